"""The fixtures the suite's tests take: the session's builds (an original, a conversion, an
adversarial set) per parametrized case, the tolerance lookup, and `expect`/`note`, which record
what a check measured and fail with its numbers. One root cause, one failure (OWNERS)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from convcheck.conversion.runner import ConversionError
from convcheck.data import DataError
from convcheck.declarations.spec import SpecError
from convcheck.pipeline.builds import Attacked, Converted
from convcheck.pipeline.cache import file_sha256
from convcheck.pipeline.cases import Case
from convcheck.pipeline.workbench import Workbench
from convcheck.plugin.parametrize import case_ids as _case_ids
from convcheck.plugin.records import case_record as _case_record
from convcheck.plugin.records import record
from convcheck.plugin.state import bench as bench_of
from convcheck.plugin.state import run
from convcheck.results import BuildFailed, fail
from convcheck.robustness.attacks import AttackError


@pytest.fixture(scope="session")
def bench(pytestconfig) -> Workbench:
    return bench_of(pytestconfig)


# One root cause, one failure: a build that failed fails the one test that owns it (with the
# converter's, loader's or attack's own message); every other test that needs what it would
# have built skips, naming that test. Owned only where the owning test is collected and not
# skipped: otherwise the needing test fails itself, so a failure is never only skipped.
OWNERS = {"original": "test_original_answers", "conversion": "test_converts",
          "attack": "test_attack_effective"}
OWNED = pytest.StashKey()  # config -> {(owning test name, case id)} collected to run


def _owned_items(items) -> set:
    names = set(OWNERS.values())
    return {(item.originalname, cid) for item in items if item.originalname in names
            and not item.get_closest_marker("skip") for cid in _case_ids(item)}


def pytest_collection_finish(session):
    session.config.stash[OWNED] = _owned_items(session.items)  # after -k/-m deselection


def _failed(request, kind: str, case_id: str, message: str):
    """The owning test gets a BuildFailed (it fails with `message`); any other test that needs
    the build skips, naming the owning test."""
    owner = OWNERS[kind]
    if request.node.originalname == owner:
        return BuildFailed(kind, case_id, message)
    if (owner, case_id) in request.config.stash.get(OWNED, set()):
        pytest.skip(f"needs the {kind} {case_id}, which failed: see {owner}[{case_id}]")
    pytest.fail(f"{message}\n(the {kind} failed; {owner}[{case_id}] is not in this run)",
                pytrace=False)


def _original(request, bench, c):
    """The case's original; a declaration, data or build that cannot be used fails
    test_original_answers with its reason."""
    c = Case(c.model, c.framework, c.seed)
    try:
        return bench.original(c.model, c.framework, c.seed)
    except (SpecError, DataError) as e:
        return _failed(request, "original", c.id, f"{c.id}: {e}")
    except Exception as e:  # a team's load callable or training failed: its own message
        return _failed(request, "original", c.id, f"{c.id}: the original could not be made: "
                                                  f"{type(e).__name__}: {e}")


@pytest.fixture
def original(request, bench):
    return _original(request, bench, request.param)


def _conversion(request, bench):
    c = replace(request.param, attack=None)
    _original(request, bench, c)  # a failed original skips (or fails) this test here
    try:
        return bench.converted(c.model, c.framework, c.target, c.seed)
    except ConversionError as e:
        return _failed(request, "conversion", c.id, f"{c.id}: {e}")


@pytest.fixture
def artifact(request, bench):
    """A converted model as an artifact on disk (its runtime is not needed)."""
    return _conversion(request, bench)


@pytest.fixture
def coreml_artifact(request, bench):
    """A CoreML artifact on disk: its spec reads on every OS, running it needs macOS."""
    return _conversion(request, bench)


@pytest.fixture
def converted(request, bench):
    """A converted model to run (its predictor loads on first use)."""
    return _conversion(request, bench)


def _adversarial(request, bench, model, attack: str):
    """The adversarial set `attack` made on `model`'s original; an attack that cannot run
    fails test_attack_effective with its reason."""
    original = getattr(model, "original", model)
    try:
        return bench.adversarial(original, attack)
    except AttackError as e:
        case_id = Attacked(original, attack).id
        return _failed(request, "attack", case_id,
                       f"{case_id}: {attack} could not attack {original.id}: {e}")


@pytest.fixture
def adversarial(request, bench):
    """adversarial(model, attack): the set `attack` made on the model's original (made once)."""
    return lambda model, attack: _adversarial(request, bench, model, attack)


@pytest.fixture(scope="session")
def selected_models(pytestconfig) -> tuple[str, ...]:
    """The models this run checks (--convcheck-models, else every declared one)."""
    return run(pytestconfig).models


@pytest.fixture
def golden_case(request):
    """A case directory of --convcheck-golden's golden data (convcheck.locate.golden)."""
    return request.param


@pytest.fixture
def robust_converted(request, bench):
    """A conversion of a model some attack applies to."""
    return _conversion(request, bench)


@pytest.fixture
def attacked_original(request, bench):
    c = request.param
    original = _original(request, bench, c)  # a failed one skips (or fails) this test here
    failed = _adversarial(request, bench, original, c.attack)
    return failed if isinstance(failed, BuildFailed) else Attacked(original, c.attack)


@pytest.fixture
def attacked(request, bench):
    """A conversion, and an attack whose adversarial set (made on its original) it is run on."""
    converted = _conversion(request, bench)
    _adversarial(request, bench, converted, request.param.attack)
    return Attacked(converted, request.param.attack)


@pytest.fixture(scope="session")
def reports_dir(pytestconfig):
    """Where this run's reports go (--convcheck-reports-dir)."""
    return run(pytestconfig).reports_dir


@pytest.fixture(scope="session")
def tol(pytestconfig):
    """tol(case)(key) -> (value, source): tolerances.toml looked up for one case."""
    tolerances, profile = run(pytestconfig).tolerances, run(pytestconfig).profile.name

    def for_case(case):
        case = getattr(case, "case", case)  # an Original, a Converted or a Case
        return lambda key: tolerances.lookup(key, **case.tolerance_case(profile))

    return for_case


NOT_LOCALISED = frozenset({"model_size", "speed_ratio", "artifact_declares", "attack_effective"})


@pytest.fixture
def expect(pytestconfig, bench):
    """expect(verdict, model, inputs=None): record what a check measured, then fail with its
    numbers, and for a failing ONNX conversion with where it first diverges (convcheck.locate)
    on the inputs the check failed on: `inputs` = (name, x, original's outputs, converted's
    outputs); by default an attack's adversarial examples for an attacked conversion, else the
    test set."""

    def check(verdict, model, inputs=None):
        entry = _case_record(bench, model, verdict) | {
            "tolerances": verdict.tolerances, "passed": verdict.passed,
            "failures": verdict.failures}
        detail = ""
        conv = model.model if isinstance(model, Attacked) else model
        # Localised: the checks of a conversion's outputs (its size, speed and declarations
        # have no operation to name).
        onnx = (isinstance(conv, Converted) and conv.target.format == "onnx"
                and verdict.check not in NOT_LOCALISED)
        if onnx and (not verdict.passed or (run(pytestconfig).locate_always
                                            and verdict.check == "output_equivalence")):
            if inputs is None and isinstance(model, Attacked):
                inputs = _adversarial_inputs(bench, model)
            inputs = inputs or _test_set_inputs(bench, conv)
            detail, entry["localisation"] = _localise(pytestconfig, bench, conv, inputs)
            detail = "" if verdict.passed else detail
        record(pytestconfig, entry)
        if onnx and not verdict.passed:
            detail += _bundle(pytestconfig, bench, conv, inputs, entry.get("localisation"))
        fail(verdict, detail)

    return check


def _test_set_inputs(bench, converted) -> tuple:
    o = converted.original
    return ("test set", bench.test_set(o.spec, o.framework)[0], bench.outputs(o),
            bench.outputs(converted))


def _adversarial_inputs(bench, attacked) -> tuple:
    conv, attack = attacked.model, attacked.attack
    adv = bench.adversarial(conv.original, attack)
    return (f"{attack} adversarial examples", adv.x_adv,
            bench.adversarial_outputs(conv.original, attack)[1],
            bench.adversarial_outputs(conv, attack)[1])


def _bundle(config, bench, converted, inputs, localisation) -> str:
    """A repro bundle of the failing case under the run's directory (convcheck.report.bundles),
    on the inputs the check failed on; one that cannot be written is said, and never replaces
    the verdict."""
    from convcheck.plugin.records import recorder
    from convcheck.report import bundles

    rec = recorder(config)
    if rec is None:
        return ""
    try:
        _, x, ref, got = inputs
        samples = (localisation or {}).get("samples") or [0]
        bound = run(config).tolerances.lookup(
            "abs_max", **converted.case.tolerance_case(bench.profile.name))[0]
        first = (converted.path if converted.path.is_file()
                 else sorted(p for p in converted.path.rglob("*") if p.is_file())[0])
        path = bundles.write(rec.run_dir, converted.id, converted.path, file_sha256(first),
                             x[samples], ref[samples], got[samples], samples, bound,
                             bench.versions, localisation)
    except Exception as e:
        return f"\nrepro bundle not written: {type(e).__name__}: {e}"
    return f"\nrepro bundle: {path} (python {path / 'reproduce.py'}: onnxruntime and numpy only)"


def _localise(config, bench, converted, inputs) -> tuple[str, dict | None]:
    """The localisation's text and record; a localisation that cannot run is said, and never
    replaces the verdict."""
    tol = run(config).tolerances
    try:
        bound = tol.lookup("locate_rel", **converted.case.tolerance_case(bench.profile.name))[0]
        loc = bench.locate(converted, bound, on=inputs)
    except Exception as e:
        return f"localisation failed: {type(e).__name__}: {e}", None
    return "where:\n" + loc.text(), loc.as_dict()


@pytest.fixture
def note(pytestconfig, bench):
    """note(measurement, model): record a figure no tolerance judges (checks.Measurement); the
    record has no verdict, so the tables show it and count it neither passed nor failed."""

    def keep(measurement, model):
        record(pytestconfig, _case_record(bench, model, measurement) | {"judged": False})

    return keep


@pytest.fixture(scope="session")
def regression_tol(pytestconfig):
    """regression_tol(framework)(key) -> (value, source): the tolerances of the known-divergence
    reproducers (convcheck.suite.regressions), which have no model case to match."""
    tolerances, profile = run(pytestconfig).tolerances, run(pytestconfig).profile.name
    return lambda framework: (lambda key: tolerances.lookup(key, framework=framework,
                                                            profile=profile))


@pytest.fixture
def regression_record(pytestconfig, bench):
    """regression_record(regression, verdict): record what a reproducer measured."""
    from convcheck import regressions

    def write(reg, verdict) -> None:
        record(pytestconfig, {
            "case": reg.id, "model": reg.name, "framework": reg.framework,
            "target": reg.exporter, "seed": regressions.SEED, "profile": bench.profile.name,
            "check": verdict.check, "measured": verdict.measured,
            "tolerances": verdict.tolerances, "passed": verdict.passed,
            "failures": verdict.failures, "behaviour": reg.behaviour, "origin": reg.origin})

    return write
