"""Parametrization: every test of the suite over the declared models' cases, with readable ids
and markers; what cannot apply (no attack for a model, an exporter that cannot take a source,
a runtime that exists on another OS) is a skip with its reason, said before anything runs."""
from __future__ import annotations

import sys
from dataclasses import replace

import pytest

from convcheck.declarations.registry import PLATFORMS, RUNTIME_OS, stand_in
from convcheck.pipeline.cases import Case, conversion_cases, original_cases, with_attacks
from convcheck.plugin.state import bench, run
from convcheck.robustness.attacks import attacks_for, why_not


def case_ids(item) -> list[str]:
    """The ids of an item's cases, and of anything else parametrized with an id (e.g. the
    reference project's minimal reproducers of known divergences)."""
    callspec = getattr(item, "callspec", None)
    return ([p.id for p in callspec.params.values()
             if isinstance(p, Case) or isinstance(getattr(p, "id", None), str)]
            if callspec else [])


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker, platform in PLATFORMS.items():
            if item.get_closest_marker(marker) and sys.platform != platform:
                item.add_marker(pytest.mark.skip(
                    reason=f"needs {marker}: its runtime does not run on {sys.platform}"))


def _formats(config) -> list:
    """Markers of every selected target's format: a check of the originals is what each
    conversion is judged against (an untrained original, an attack that moved nothing), so
    selecting a format (-m onnx) keeps it."""
    return [getattr(pytest.mark, f) for f in dict.fromkeys(
        t.format for t in run(config).targets.values())]


def _params(cases, extra=lambda case: []):
    return [pytest.param(c, id=c.id, marks=[getattr(pytest.mark, m) for m in c.markers()]
                         + extra(c)) for c in cases]


def pytest_generate_tests(metafunc):
    config = metafunc.config
    models, seeds, targets = run(config).models, run(config).profile.seeds, run(config).targets

    def parametrize(name, params, none_because):
        if not params:  # said once, with its reason, instead of pytest's "empty parameter set"
            params = [pytest.param(None, id="none", marks=pytest.mark.skip(reason=none_because))]
        # function scope: a build that failed must fail its owning test and skip the others
        # (see _failed), and pytest would re-raise a session-scoped parameter's first error in
        # every test; the Workbench keeps each build for the session, so nothing is redone.
        metafunc.parametrize(name, params, indirect=True, scope="function")

    fixtures = metafunc.fixturenames
    format_marks = _formats(config)

    def formats(case):
        return format_marks

    conversions = conversion_cases(models, targets, seeds)
    labelled = bench(config).labelled  # the data is loaded at session start

    def attacked(spec):
        return attacks_for(spec, labelled(spec))
    refused = {c: why for c in conversions if (why := _exporter_refuses(c, targets))}

    def refusing(case):
        why = refused.get(replace(case, attack=None))
        return [pytest.mark.skip(reason=why)] if why else []

    def runtime_os(case):
        # A format whose runtime exists on another OS only runs here on its stand-in (CoreML ML
        # programs on the MIL reference interpreter) where that can run the target; else the
        # OS marker skips it, with the stand-in's reason.
        target = targets[case.target]
        os_name = RUNTIME_OS.get(target.format)
        other = stand_in(target.format)
        why = other.why_not(target) if other is not None else None
        if other is not None and why is None:
            return refusing(case)
        marks = [getattr(pytest.mark, os_name)] if os_name else []
        if other is not None:
            marks.append(pytest.mark.skip(reason=f"needs {os_name}: its runtime does not run "
                                                 f"on {sys.platform}, and {other.name}: {why}"))
        return marks + refusing(case)
    no_conversion = (f"no conversion selected for models {', '.join(models)} (targets: "
                     f"{', '.join(targets) or 'none'})")
    if "original" in fixtures:
        parametrize("original", _params(original_cases(models, seeds), formats),
                    "no original selected")
    # `artifact`: the conversion alone (runs everywhere); `converted`: also runs the converted
    # model, so cases whose runtime exists on one OS only carry that OS's marker.
    if "artifact" in fixtures:
        parametrize("artifact", _params(conversions, refusing), no_conversion)
    # `coreml_artifact`: the conversion alone, for CoreML targets only (its spec is inspected).
    if "coreml_artifact" in fixtures:
        coreml = {n: t for n, t in targets.items() if t.format == "coreml"}
        parametrize("coreml_artifact", _params(conversion_cases(models, coreml, seeds), refusing),
                    "no CoreML conversion selected")
    if "converted" in fixtures:
        parametrize("converted", _params(conversions, runtime_os), no_conversion)
    # `attacked_original` / `attacked`: an original / a conversion, with each attack that
    # applies to its model (the adversarial set is made on the original). A model no attack
    # applies to shows up once per case, skipped with the reasons.
    if "attacked_original" in fixtures:
        originals = original_cases(models, seeds)
        parametrize("attacked_original", _params(with_attacks(originals, labelled), formats)
                    + _not_attacked([c for c in originals if not attacked(c.spec)],
                                    labelled, formats(None)),
                    "no original selected")
    if "attacked" in fixtures:
        parametrize("attacked", _params(with_attacks(conversions, labelled), runtime_os)
                    + _not_attacked([c for c in conversions if not attacked(c.spec)], labelled),
                    no_conversion)
    if "golden_case" in fixtures:
        parametrize("golden_case", _golden_cases(config),
                    "no golden data to replay: --convcheck-golden=DIR replays what "
                    "--convcheck-save-golden=DIR saved")
    if "robust_converted" in fixtures:
        parametrize("robust_converted",
                    _params([c for c in conversions if attacked(c.spec)], runtime_os)
                    + _not_attacked([c for c in conversions if not attacked(c.spec)], labelled),
                    no_conversion)


def _golden_cases(config) -> list:
    """The cases of --convcheck-golden's directory, by their saved case ids."""
    root = run(config).golden
    return [pytest.param(p.parent, id=p.parent.name, marks=[pytest.mark.onnx])
            for p in sorted(root.glob("*/golden.json"))] if root else []


def _exporter_refuses(case, targets) -> str | None:
    """Why the case's exporter cannot take its original's declared source (said before
    converting, as the skip of every test of the case), naming the target that can."""
    from convcheck.conversion.exporters import why_not as exporter_why_not

    source = case.spec.sources[case.framework]
    if case.target in source.artifacts:
        return None  # a shipped file: nothing is converted
    exporter = targets[case.target].options[case.framework].get("exporter")
    why = exporter_why_not(exporter, source) if exporter else None
    if why is None:
        return None
    fmt = targets[case.target].format
    able = [n for n, t in targets.items() if n != case.target and t.format == fmt
            and case.framework in t.options
            and "exporter" in t.options[case.framework]
            and exporter_why_not(t.options[case.framework]["exporter"], source) is None]
    return (f"{case.id}: target {case.target}'s {exporter} exporter {why} (model "
            f"{case.model}, {case.framework} source): not converted. "
            + (f"Its {fmt} conversion is target {', '.join(able)}; leave {case.target} out of "
               f"the model's targets to stop this notice" if able else
               f"No selected {fmt} target can take it: add one whose exporter can (e.g. "
               f"exporter = \"torchscript\")"))


def _not_attacked(cases, labelled, extra=()) -> list:
    from convcheck.robustness.attacks import ATTACKS

    def reasons(spec) -> str:
        by_reason: dict = {}
        for a in ATTACKS:
            by_reason.setdefault(why_not(a, spec, labelled(spec)), []).append(a)
        return "; ".join(f"{', '.join(a)}: {r}" for r, a in by_reason.items())

    return [pytest.param(c, id=f"{c.id}-no-attack", marks=[
        *(getattr(pytest.mark, m) for m in c.markers()), *extra, pytest.mark.robustness,
        pytest.mark.skip(reason=f"robustness: no attack applies to {c.model}: "
                                f"{reasons(c.spec)}")]) for c in cases]
