"""Tests of convcheck.settings: the shipped profiles/tolerances/targets, and every way a file can be wrong.

Each bad file is written to tmp_path; every mistake must be a ConfigError that names the file and
the offending key (and, for unknown keys/names, lists the valid ones). What depends on the declared
models (a train table per build-source model, FGSM's step per image data set, the genetic attack's
text length) is checked at start-up, against the selected models (convcheck.plugin.options).
"""
from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import pytest
from minimal_profile import ATTACK_TABLES, minimal_profile

from convcheck import settings as config
from convcheck.declarations import registry
from convcheck.plugin.options import _check_profile, check_attack_sizes
from convcheck.settings import (
    MATCH_KEYS,
    TOLERANCE_KEYS,
    ConfigError,
    HyperParams,
    get_profile,
    load_profiles,
    load_targets,
    load_tolerances,
    select_targets,
)
from convcheck.settings.project import DEFAULTS
from models import FRAMEWORKS, ZOO

ALL_TARGETS = ("onnx", "onnx-legacy")
ZOO_DATASETS = tuple(dict.fromkeys(s.dataset for s in ZOO.values()))  # mnist, cifar10, imdb


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def raises(fn, *args, match: str | None = None, **kwargs) -> str:
    with pytest.raises(ConfigError) as exc:
        fn(*args, **kwargs)
    msg = str(exc.value)
    if match is not None:
        assert re.search(match, msg), msg
    return msg


# --------------------------------------------------------------------------- shipped files


def test_packaged_profiles_load_alone():
    """The packaged defaults are complete profiles for any model: seeds, every attack, the
    property tests' sizes; no data or train table (those are a project's)."""
    profiles = load_profiles(DEFAULTS / "profiles.toml")
    assert set(profiles) == {"smoke", "standard", "paper"}
    for name, p in profiles.items():
        assert p.name == name and p.description
        assert p.seeds and all(isinstance(s, int) for s in p.seeds)
        assert (p.data, p.train) == ({}, {})
        assert p.sizes("mnist") == {"n_train": None, "n_test": None}  # absent: every sample
        for attack in config.ATTACK_PARAMS:
            assert p.attack(attack)["n_samples"] >= 1
        assert set(p.extra["hypothesis"]) == {"max_batch", "max_examples"}


def test_shipped_profiles_load():
    """The project's profiles (packaged defaults + profiles.toml): every data set the zoo uses
    is sized, and the packaged keys the project does not set are kept."""
    profiles = load_profiles()
    assert {"smoke", "standard", "paper"} <= set(profiles)
    packaged = load_profiles(DEFAULTS / "profiles.toml")
    for name, p in profiles.items():
        assert p.name == name
        assert p.seeds and all(isinstance(s, int) for s in p.seeds)
        assert set(p.data) == set(ZOO_DATASETS)
        for sizes in p.data.values():
            assert set(sizes) == {"n_train", "n_test"}
        if name in packaged:
            assert p.seeds == packaged[name].seeds
            assert p.extra["hypothesis"] == packaged[name].extra["hypothesis"]
            assert p.attack("boundary") == packaged[name].attack("boundary")
        # The zoo's own FGSM steps per data set replace the packaged single number.
        assert p.fgsm_eps("mnist") == 0.15 and p.fgsm_eps("cifar10") == 0.01
    # Every shipped profile passes the start-up checks for the whole zoo.
    for p in profiles.values():
        _check_profile(p, tuple(ZOO))


def test_shipped_tolerances_load():
    targets = load_targets()
    tol = load_tolerances(targets=tuple(targets), models=tuple(ZOO), datasets=ZOO_DATASETS)
    # [default] sets every tolerance the suite knows: lookup never falls through.
    assert set(tol.defaults) == set(TOLERANCE_KEYS)
    reasons = [o.reason for o in tol.overrides]
    assert all(reasons)
    for model, spec in ZOO.items():
        for t in [None, *targets]:
            for fw in FRAMEWORKS:
                case = dict(model=model, framework=fw, dataset=spec.dataset, target=t,
                            profile="smoke")
                for key in TOLERANCE_KEYS:
                    value, source = tol.lookup(key, **case)
                    assert isinstance(value, (int, float)) and not isinstance(value, bool)
                    assert source == "default" or any(source.endswith(r) for r in reasons)


def test_shipped_targets_load():
    targets = load_targets()
    assert set(ALL_TARGETS) <= set(targets)
    assert targets["onnx"].frameworks() == ("pytorch", "keras")
    assert targets["onnx-legacy"].options["pytorch"]["exporter"] == "torchscript"
    for t in targets.values():
        assert isinstance(t.timeout_s, float) and t.timeout_s > 0
        for fw, options in t.options.items():
            assert options["exporter"] in registry.exporters(t.format, fw)


def test_select_targets():
    assert set(select_targets(None)) == set(load_targets())
    assert list(select_targets("onnx-legacy, onnx")) == ["onnx-legacy", "onnx"]
    # A variant brings the conversion it is made from (and sized against).
    assert list(select_targets("onnx-int8-dynamic")) == ["onnx-int8-dynamic", "onnx"]
    assert list(select_targets("coreml-mlprogram-int8,onnx")) == [
        "coreml-mlprogram-int8", "onnx", "coreml-mlprogram-fp16"]
    for empty in ("", ",", " , "):
        raises(select_targets, empty, match="no target named in .*; valid targets: onnx")


@pytest.mark.parametrize("profile", sorted(load_profiles()))
def test_every_shipped_profile_trains_every_zoo_model_with_one_table_per_model(profile):
    """Every zoo model is a build source, so each shipped profile trains it (the start-up rule,
    see test_build_source_without_train_table_is_a_start_up_error). Both frameworks of a model
    train with the same hyperparameters: by construction, since a profile holds one
    HyperParams per model, never one per (model, framework)."""
    p = load_profiles()[profile]
    assert all(s.kind == "build" for spec in ZOO.values() for s in spec.sources.values())
    assert set(p.train) == set(ZOO)
    for model, hp in p.train.items():
        assert isinstance(hp, HyperParams), model
        assert hp.optimizer in ("sgd", "adam")
        assert isinstance(hp.lr, float) and hp.lr > 0
        assert isinstance(hp.batch_size, int) and hp.batch_size > 0
        assert isinstance(hp.epochs, int) and hp.epochs > 0


def test_per_framework_hyperparameters_are_rejected(tmp_path):
    """A framework-specific table would let the two frameworks train differently: refused."""
    text = _profile_text().replace(
        'train.lenet5 = { optimizer = "sgd", lr = 0.05, batch_size = 64, epochs = 1 }',
        'train.lenet5.pytorch = { optimizer = "sgd", lr = 0.05, batch_size = 64, epochs = 1 }')
    msg = raises(load_profiles, write(tmp_path, text), match=r"unknown key p\.train\.lenet5\.pytorch")
    assert "valid keys" in msg


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize("loader", [load_profiles, load_tolerances, load_targets])
def test_malformed_toml_names_the_file(tmp_path, loader):
    path = write(tmp_path, "[default\nabs_max = = 1\n", name="broken.toml")
    msg = raises(loader, path, match="malformed TOML")
    assert str(path) in msg


@pytest.mark.parametrize("loader", [load_profiles, load_tolerances, load_targets])
def test_missing_file_is_a_config_error(tmp_path, loader):
    raises(loader, tmp_path / "absent.toml", match="file not found")


# --------------------------------------------------------------------------- profiles


def _profile_text(name: str = "p") -> str:
    return minimal_profile(name)


def test_minimal_profile_parses(tmp_path):
    p = load_profiles(write(tmp_path, _profile_text()))["p"]
    assert p.seeds == (0, 1)
    assert p.data["mnist"] == {"n_train": 10, "n_test": 5}
    assert p.data["imdb"] == {"n_train": None, "n_test": None}  # absent = the whole data set
    assert p.train["lenet5"] == HyperParams("sgd", 0.05, 64, 1, 0.0)


@pytest.mark.parametrize("old, new, key, valid", [
    ('description = "test"', 'descripton = "test"', "p.descripton", "seeds"),
    ("data.mnist = { n_train = 10, n_test = 5 }", "data.mnist = { n_trian = 10 }",
     "p.data.mnist.n_trian", "n_train"),
    ("train.lenet5 = { optimizer", "train.lenet5 = { epoch = 3, optimizer", "p.train.lenet5.epoch",
     "batch_size"),
])
def test_profile_unknown_key_is_named_with_valid_keys(tmp_path, old, new, key, valid):
    text = _profile_text()
    assert old in text
    path = write(tmp_path, text.replace(old, new, 1))
    msg = raises(load_profiles, path, match=f"unknown key {re.escape(key)}; valid keys: ")
    assert str(path) in msg and valid in msg


@pytest.mark.parametrize("old, new, key", [
    ("seeds = [0, 1]", 'seeds = "0"', "p.seeds"),
    ("batch_size = 64, epochs = 1 }\ntrain.resnet18",
     'batch_size = "64", epochs = 1 }\ntrain.resnet18', "p.train.lenet5.batch_size"),
    ("batch_size = 64, epochs = 1 }\ntrain.resnet18",
     "batch_size = 64, epochs = true }\ntrain.resnet18", "p.train.lenet5.epochs"),
    ("lr = 0.05, batch_size = 64, epochs = 1 }\ntrain.resnet18",
     "lr = true, batch_size = 64, epochs = 1 }\ntrain.resnet18", "p.train.lenet5.lr"),
    ("batch_size = 64, epochs = 1 }\ntrain.resnet18",
     "batch_size = 64.0, epochs = 1 }\ntrain.resnet18", "p.train.lenet5.batch_size"),
    ("n_train = 10", "n_train = 10.5", "p.data.mnist.n_train"),
])
def test_profile_wrong_type(tmp_path, old, new, key):
    text = _profile_text()
    assert old in text
    path = write(tmp_path, text.replace(old, new, 1))
    raises(load_profiles, path, match=f"{re.escape(key)} must be ")


@pytest.mark.parametrize("old, new, match", [
    ("seeds = [0, 1]", "seeds = []", "non-empty list of integers"),
    ("seeds = [0, 1]", "seeds = [0, true]", "non-empty list of integers"),
    ("seeds = [0, 1]\n", "", "missing 'seeds'"),
    ('optimizer = "sgd", lr = 0.05, batch_size = 64, epochs = 1 }\ntrain.resnet18',
     'optimizer = "sgd", lr = 0.05, batch_size = 64 }\ntrain.resnet18', "missing epochs"),
    ('optimizer = "sgd"', 'optimizer = "rmsprop"', "'rmsprop' unknown; valid: sgd, adam"),
    ("train.gru = {", "train.gru = 5\n#", r"p\.train\.gru must be a table"),
    ("data.imdb = {}", "data.imdb = 3", r"p\.data\.imdb must be a table"),
])
def test_profile_other_errors(tmp_path, old, new, match):
    text = _profile_text()
    assert old in text
    raises(load_profiles, write(tmp_path, text.replace(old, new, 1)), match=match)


def test_profiles_name_any_data_set_and_model(tmp_path):
    """data and train tables are keyed by the project's own names (its data sets and models,
    checked at start-up against those declared), and may be left out: absent data = every
    sample; a model without a train table is refused at start-up only if convcheck has to
    train it."""
    text = _profile_text().replace("data.imdb = {}", "data.mydata = { n_test = 7 }")
    text = text.replace("train.gru = {", "train.mymodel = {")
    p = load_profiles(write(tmp_path, text))["p"]
    assert p.sizes("mydata") == {"n_train": None, "n_test": 7}
    assert p.sizes("imdb") == {"n_train": None, "n_test": None}
    assert "mymodel" in p.train and "gru" not in p.train
    bare = load_profiles(write(tmp_path, "[b]\nseeds = [3]\n" + "\n".join(ATTACK_TABLES) + "\n",
                               "bare.toml"))["b"]
    assert (bare.seeds, bare.data, bare.train) == ((3,), {}, {})


def test_profile_section_must_be_a_table(tmp_path):
    raises(load_profiles, write(tmp_path, 'smoke = "x"\n'), match=r"\[smoke\] must be a table")


def test_unknown_profile_lists_the_valid_ones():
    msg = raises(get_profile, "nope", match="unknown profile 'nope'; valid profiles: ")
    for name in load_profiles():
        assert name in msg
    assert get_profile("smoke").name == "smoke"


# --------------------------------------------------------------------------- tolerances


def tolerances(tmp_path, text: str, targets=ALL_TARGETS, models=tuple(ZOO), datasets=ZOO_DATASETS):
    return load_tolerances(write(tmp_path, text), targets=targets, models=models,
                           datasets=datasets)


def test_unknown_top_level_key(tmp_path):
    msg = raises(tolerances, tmp_path, "[defaults]\nabs_max = 1e-5\n",
                 match=r"unknown key <top>\.defaults; valid keys: default, override")
    assert "bad.toml" in msg


def test_unknown_key_in_default_lists_the_valid_keys(tmp_path):
    msg = raises(tolerances, tmp_path, "[default]\nabs_maxx = 1e-5\n",
                 match=r"unknown key default\.abs_maxx; valid keys: ")
    for k in TOLERANCE_KEYS:
        assert k in msg


def test_unknown_key_in_override_lists_the_valid_keys(tmp_path):
    text = """
        [[override]]
        model = "lenet5"
        abs_max = 1e-4
        reson = "typo"
    """
    msg = raises(tolerances, tmp_path, text, match=r"unknown key override\[0\]\.reson; valid keys: ")
    for k in ("reason", "abs_max", *MATCH_KEYS):
        assert k in msg


@pytest.mark.parametrize("value, typ", [('"1e-5"', "int or float"), ("true", "int or float"),
                                        ("[1e-5]", "int or float")])
def test_wrong_type_in_default(tmp_path, value, typ):
    msg = raises(tolerances, tmp_path, f"[default]\nabs_max = {value}\n",
                 match=rf"default\.abs_max must be {typ}")
    assert "bad.toml" in msg


def test_wrong_type_in_override(tmp_path):
    text = """
        [[override]]
        model = "lenet5"
        rel_max = "0.1"
        reason = "because"
    """
    raises(tolerances, tmp_path, text, match=r"override\[0\]\.rel_max must be int or float")


def test_default_must_be_a_table(tmp_path):
    raises(tolerances, tmp_path, "default = 1\n", match="default must be a table")


def test_override_must_be_an_array_of_tables(tmp_path):
    raises(tolerances, tmp_path, '[override]\nmodel = "lenet5"\nabs_max = 1.0\nreason = "x"\n',
           match=r"\[\[override\]\]")


@pytest.mark.parametrize("reason", [None, '""', '"   "', "5"])
def test_override_without_reason(tmp_path, reason):
    text = '[[override]]\nmodel = "lenet5"\nabs_max = 1e-4\n'
    if reason is not None:
        text += f"reason = {reason}\n"
    raises(tolerances, tmp_path, text, match=r"override\[0\] has no 'reason'")


def test_override_matching_everything(tmp_path):
    text = '[[override]]\nabs_max = 1e-4\nreason = "looser everywhere"\n'
    raises(tolerances, tmp_path, text, match=r"override\[0\] matches every case")


def test_override_setting_nothing(tmp_path):
    text = '[[override]]\nmodel = "lenet5"\nreason = "nothing"\n'
    raises(tolerances, tmp_path, text, match=r"override\[0\] sets no tolerance")


def test_override_unknown_model_lists_valid_models(tmp_path):
    text = """
        [[override]]
        model = "lenet5"
        abs_max = 1e-4
        reason = "fine"

        [[override]]
        model = "lenet"
        abs_max = 1e-4
        reason = "typo in the model"
    """
    msg = raises(tolerances, tmp_path, text, match=r"override\[1\]\.model = 'lenet' is unknown; valid: ")
    for model in ZOO:
        assert model in msg


@pytest.mark.parametrize("key, value, valid", [
    ("framework", "tensorflow", FRAMEWORKS),
    ("dataset", "cifar100", ZOO_DATASETS),
    ("target", "coreml-fp16", ALL_TARGETS),
    ("format", "tflite", ("onnx", "coreml")),
])
def test_override_unknown_match_value(tmp_path, key, value, valid):
    text = f'[[override]]\n{key} = "{value}"\nabs_max = 1e-4\nreason = "x"\n'
    msg = raises(tolerances, tmp_path, text, match=rf"override\[0\]\.{key} = '{value}' is unknown")
    for v in valid:
        assert v in msg


@pytest.mark.parametrize("key", ["target", "model", "dataset"])
def test_project_names_are_unchecked_without_a_name_list(tmp_path, key):
    """model, dataset and target are the project's names: checked against those passed in
    (the plugin passes every declared one), else not at all."""
    text = f'[[override]]\n{key} = "anything"\nabs_max = 1e-4\nreason = "x"\n'
    assert load_tolerances(write(tmp_path, text)).overrides[0].match == {key: "anything"}
    raises(tolerances, tmp_path, text, match=rf"override\[0\]\.{key} = 'anything' is unknown")


def test_tolerance_files_merge_defaults_then_overrides_in_order(tmp_path):
    base = write(tmp_path, """
        [default]
        abs_max = 1e-5
        rel_max = 1e-2

        [[override]]
        model = "lstm"
        abs_max = 1e-4
        rel_max = 0.1
        reason = "base"
    """, "base.toml")
    own = write(tmp_path, """
        [default]
        abs_max = 2e-5

        [[override]]
        model = "lstm"
        abs_max = 3e-4
        reason = "project"
    """, "own.toml")
    tol = load_tolerances([base, own], models=tuple(ZOO))
    assert tol.defaults == {"abs_max": 2e-5, "rel_max": 1e-2}  # the later [default] wins
    assert [o.reason for o in tol.overrides] == ["base", "project"]
    assert tol.lookup("abs_max", model="gru") == (2e-5, "default")
    assert tol.lookup("abs_max", model="lstm")[0] == 3e-4  # the project's override, last
    assert tol.lookup("rel_max", model="lstm")[0] == 0.1  # the base override still applies
    assert tol.path == own
    # A mistake in either file names that file.
    bad = write(tmp_path, "[default]\nabs_maxx = 1\n", "bad2.toml")
    assert str(bad) in raises(load_tolerances, [base, bad], match="unknown key default.abs_maxx")


def test_shipped_tolerances_hold_no_bound_implied_by_another():
    """The packaged and the zoo's tolerances pass the start-up check on every case they judge
    (the plugin's own case list), under every profile."""
    from convcheck.plugin.options import _bound_cases
    targets = load_targets()
    tol = load_tolerances(targets=tuple(targets), models=tuple(ZOO), datasets=ZOO_DATASETS)
    for profile in ("smoke", "standard", "paper"):
        cases = _bound_cases(profile, targets)
        assert {c["target"] for c in cases} >= set(targets) | {None}
        config.check_implied_bounds(tol, cases)


BOUND_CASE = {"model": "lenet5", "framework": "pytorch", "dataset": "mnist", "target": "onnx",
              "profile": "smoke", "attack": None, "classes": 10, "attacks": ("fgsm", "boundary")}


@pytest.mark.parametrize("values, message", [
    ({"abs_mean": 1e-5}, r"abs_mean = 1e-05 \(\[default\]\) >= abs_max = 1e-05"),
    ({"abs_p99": 2e-5}, r"abs_p99 = 2e-05 \(\[default\]\) >= abs_max = 1e-05"),
    ({"abs_max": 1.0, "abs_mean": 0.25, "abs_p99": 0.5},
     r"abs_mean = 0.25 .*at most 2/10 = 0.2(.|\n)*abs_max = 1 .*differ by at most 1"),
    ({"robustness_indicator": 0.0},
     r"robustness_indicator = 0 \(\[default\]\) >= success_rate_delta = 0 .*mean "
     r"success_rate_delta over fgsm, boundary \(0\)"),
    ({"success_rate_delta": 0.1, "robustness_indicator": 0.1}, r"robustness_indicator = 0.1"),
])
def test_a_bound_implied_by_another_is_refused(values, message):
    tol = config.Tolerances(dict(DEFAULT_BOUNDS, **values), [], Path("t.toml"))
    with pytest.raises(ConfigError, match=message) as e:
        config.check_implied_bounds(tol, [BOUND_CASE])
    assert "for model=lenet5, framework=pytorch, dataset=mnist, target=onnx" in str(e.value)


def test_bounds_that_can_fail_on_their_own_are_accepted():
    ok = [{}, {"abs_mean": math.inf, "abs_p99": math.inf},  # inf: unjudged on purpose
          {"success_rate_delta": 0.1, "robustness_indicator": 0.05},  # below the mean: judged
          {"abs_max": 0.5, "abs_mean": 0.19, "abs_p99": 0.4}]
    for values in ok:
        tol = config.Tolerances(dict(DEFAULT_BOUNDS, **values), [], Path("t.toml"))
        config.check_implied_bounds(tol, [BOUND_CASE])
    # an override loosening the deltas for one attack only: the mean is what bounds R
    tol = config.Tolerances(dict(DEFAULT_BOUNDS, robustness_indicator=0.05),
                            [config.Override({"attack": "fgsm"}, {"success_rate_delta": 0.2},
                                             "r")], Path("t.toml"))
    config.check_implied_bounds(tol, [BOUND_CASE])  # mean 0.1 > 0.05
    tol.defaults["robustness_indicator"] = 0.1
    with pytest.raises(ConfigError, match=r"success_rate_delta = 0.2 \(\[\[override\]\] "
                                          r"\{'attack': 'fgsm'\}\)"):
        config.check_implied_bounds(tol, [BOUND_CASE])


DEFAULT_BOUNDS = {"abs_max": 1e-5, "abs_mean": 1e-6, "abs_p99": 1e-6, "success_rate_delta": 0.0,
                  "robustness_indicator": math.inf}


def test_packaged_tolerances_set_every_default():
    tol = load_tolerances(DEFAULTS / "tolerances.toml")
    assert set(tol.defaults) == set(TOLERANCE_KEYS)
    # The project's file holds overrides only: its [default] is the packaged one.
    assert load_tolerances(targets=tuple(load_targets())).defaults == tol.defaults


LOOKUP_TOML = """
    [default]
    abs_max = 1e-5
    rel_max = 1e-2
    accuracy_floor = 0.6

    [[override]]
    model = "lstm"
    abs_max = 1e-4
    reason = "recurrent accumulation"

    [[override]]
    model = "lstm"
    framework = "keras"
    abs_max = 1e-3
    reason = "keras lstm via tf2onnx loops"

    [[override]]
    dataset = "imdb"
    accuracy_floor = 0.65
    reason = "binary task"

    [[override]]
    target = "onnx-legacy"
    profile = "smoke"
    rel_max = 0.5
    reason = "legacy exporter on tiny data"
"""


def test_lookup_default_then_last_matching_override_wins(tmp_path):
    tol = tolerances(tmp_path, LOOKUP_TOML)
    case = dict(model="lstm", framework="keras", dataset="imdb", target="onnx", profile="smoke")
    # No override sets rel_max for this case (target differs): the default, sourced "default".
    assert tol.lookup("rel_max", **case) == (1e-2, "default")
    # Two overrides match; the later one wins, and the source names its reason.
    value, source = tol.lookup("abs_max", **case)
    assert value == 1e-3
    assert "keras lstm via tf2onnx loops" in source and source.startswith("override ")
    assert "'framework': 'keras'" in source
    # Only the first override matches pytorch.
    value, source = tol.lookup("abs_max", **{**case, "framework": "pytorch"})
    assert (value, source.endswith("recurrent accumulation")) == (1e-4, True)
    # Other models: the default.
    assert tol.lookup("abs_max", **{**case, "model": "gru"}) == (1e-5, "default")
    assert tol.get("abs_max", **{**case, "model": "gru"}) == 1e-5
    # Overrides with several match keys need all of them.
    value, source = tol.lookup("rel_max", **{**case, "target": "onnx-legacy"})
    assert value == 0.5 and "legacy exporter on tiny data" in source
    assert tol.lookup("rel_max", **{**case, "target": "onnx-legacy", "profile": "paper"})[0] == 1e-2
    # An override for one key leaves the others alone.
    assert tol.lookup("accuracy_floor", **case)[0] == 0.65
    assert tol.lookup("accuracy_floor", **{**case, "dataset": "mnist", "model": "lenet5"})[0] == 0.6


def test_an_override_by_format_applies_to_every_target_of_it(tmp_path):
    from convcheck.pipeline.cases import Case

    tol = tolerances(tmp_path, '[default]\nspeed_ratio = 1.5\n[[override]]\nformat = "coreml"\n'
                               'speed_ratio = 2.5\nreason = "not timed in pairs"\n')
    cases = [Case("lenet5", "keras", 0, t, format=f) for t, f in
             (("onnx", "onnx"), ("onnx-legacy", "onnx"), ("coreml-neuralnetwork", "coreml"),
              ("coreml-mlprogram-fp16", "coreml"))]
    assert [tol.get("speed_ratio", **c.tolerance_case("smoke")) for c in cases] == [1.5, 1.5,
                                                                                  2.5, 2.5]


def test_lookup_order_is_file_order(tmp_path):
    swapped = """
        [default]
        abs_max = 1e-5

        [[override]]
        model = "lstm"
        framework = "keras"
        abs_max = 1e-3
        reason = "specific first"

        [[override]]
        model = "lstm"
        abs_max = 1e-4
        reason = "general last"
    """
    value, source = tolerances(tmp_path, swapped).lookup("abs_max", model="lstm", framework="keras")
    assert value == 1e-4 and "general last" in source


def test_lookup_unknown_or_unset_tolerance(tmp_path):
    tol = tolerances(tmp_path, LOOKUP_TOML)
    msg = raises(tol.lookup, "abs_maxx", model="lenet5", match="unknown tolerance 'abs_maxx'")
    assert "abs_max" in msg
    raises(tol.lookup, "abs_mean", model="lenet5", match=r"no value for tolerance 'abs_mean'")


# --------------------------------------------------------------------------- targets

TARGETS_TOML = """
    [t]
    format = "onnx"
    timeout_s = 30
    pytorch = { exporter = "dynamo", opset = 18 }
    keras = { exporter = "tf2onnx", opset = 17 }
"""


def test_minimal_targets_parse(tmp_path):
    t = load_targets(write(tmp_path, TARGETS_TOML))["t"]
    assert (t.format, t.timeout_s, t.frameworks()) == ("onnx", 30.0, ("pytorch", "keras"))
    assert t.options["pytorch"] == {"exporter": "dynamo", "opset": 18}


@pytest.mark.parametrize("old, new, key, valid", [
    ("timeout_s = 30", "timeout = 30", "t.timeout", "timeout_s"),
    ("timeout_s = 30", "tensorflow = { exporter = 'tf2onnx' }", "t.tensorflow", "keras"),
    ("opset = 18", "opset = 18, dynamic = true", "t.pytorch.dynamic", "exporter"),
])
def test_target_unknown_key(tmp_path, old, new, key, valid):
    path = write(tmp_path, TARGETS_TOML.replace(old, new))
    msg = raises(load_targets, path, match=f"unknown key {re.escape(key)}; valid keys: ")
    assert valid in msg and str(path) in msg


@pytest.mark.parametrize("old, new, match", [
    ("timeout_s = 30", 'timeout_s = "30"', r"t\.timeout_s must be int or float"),
    ("timeout_s = 30", "timeout_s = true", r"t\.timeout_s must be int or float"),
    ("opset = 18", 'opset = "18"', r"t\.pytorch\.opset must be int"),
    ('pytorch = { exporter = "dynamo", opset = 18 }', "pytorch = 5", r"t\.pytorch must be dict"),
])
def test_target_wrong_type(tmp_path, old, new, match):
    raises(load_targets, write(tmp_path, TARGETS_TOML.replace(old, new)), match=match)


@pytest.mark.parametrize("old, new, match", [
    ('format = "onnx"', 'format = "tflite"', r"t\.format 'tflite' unknown; valid: onnx, coreml"),
    ('format = "onnx"\n', "", r"t\.format None unknown"),
    ('exporter = "dynamo"', 'exporter = "tf2onnx"',
     r"t\.pytorch\.exporter 'tf2onnx' unknown for onnx; valid: dynamo, torchscript"),
    ('exporter = "tf2onnx"', 'exporter = "dynamo"',
     r"t\.keras\.exporter 'dynamo' unknown for onnx; valid: tf2onnx"),
    ('exporter = "dynamo", ', "", r"t\.pytorch\.exporter None unknown"),
])
def test_target_unknown_format_or_exporter(tmp_path, old, new, match):
    text = TARGETS_TOML.replace(old, new, 1)
    assert text != TARGETS_TOML
    raises(load_targets, write(tmp_path, text), match=match)


COREML_TOML = """
    [c]
    format = "coreml"
    pytorch = { exporter = "jit-trace", convert_to = "mlprogram", precision = "fp16", deployment_target = "macOS12" }
    keras = { exporter = "tf-function", convert_to = "mlprogram", precision = "fp16", deployment_target = "macOS12" }
"""


def test_shipped_coreml_targets():
    targets = load_targets()
    for name in ("coreml-mlprogram-fp32", "coreml-mlprogram-fp16", "coreml-neuralnetwork"):
        assert targets[name].format == "coreml"
        assert targets[name].frameworks() == ("pytorch", "keras")


@pytest.mark.parametrize("old, new, match", [
    ('precision = "fp16"', 'precision = "int8"', r"c\.pytorch\.precision 'int8' unknown; valid: fp32, fp16"),
    ('convert_to = "mlprogram"', 'convert_to = "nn"',
     r"c\.pytorch\.convert_to 'nn' unknown; valid: mlprogram, neuralnetwork"),
    ('deployment_target = "macOS12"', 'deployment_target = "iOS15"',
     r"c\.pytorch\.deployment_target 'iOS15' unknown; valid: macOS10_15"),
    (', deployment_target = "macOS12"', "", r"c\.pytorch\.deployment_target None unknown"),
    ('convert_to = "mlprogram", precision = "fp16", deployment_target = "macOS12"',
     'convert_to = "neuralnetwork", precision = "fp16", deployment_target = "macOS11"',
     r"c\.pytorch\.precision 'fp16' needs convert_to = 'mlprogram'"),
    ('deployment_target = "macOS12"', 'deployment_target = "macOS11"',
     r"c\.pytorch\.deployment_target 'macOS11' does not fit convert_to 'mlprogram'"),
    ('convert_to = "mlprogram", precision = "fp16", deployment_target = "macOS12"',
     'convert_to = "neuralnetwork", precision = "fp32", deployment_target = "macOS11"',
     r"\[c\] convert_to differs between frameworks"),
    ('exporter = "jit-trace"', 'exporter = "dynamo"',
     r"c\.pytorch\.exporter 'dynamo' unknown for coreml; valid: jit-trace"),
    ('precision = "fp16", ', 'opset = 17, precision = "fp16", ', r"unknown key c\.pytorch\.opset"),
])
def test_coreml_target_options(tmp_path, old, new, match):
    assert load_targets(write(tmp_path, COREML_TOML, "good.toml"))["c"].format == "coreml"
    text = COREML_TOML.replace(old, new, 1)
    assert text != COREML_TOML
    raises(load_targets, write(tmp_path, text), match=match)


def test_target_converting_nothing(tmp_path):
    raises(load_targets, write(tmp_path, '[t]\nformat = "onnx"\n'), match="converts no framework")


@pytest.mark.parametrize("timeout", ["0", "-1", "0.0"])
def test_target_timeout_must_be_positive(tmp_path, timeout):
    text = TARGETS_TOML.replace("timeout_s = 30", f"timeout_s = {timeout}")
    raises(load_targets, write(tmp_path, text), match=rf"t\.timeout_s must be > 0, got {timeout}")


def test_target_with_a_converter_function(tmp_path):
    """A framework table may name its own converter (module:function) instead of a built-in
    exporter: its options are passed through unchecked, the function must import."""
    text = TARGETS_TOML.replace('keras = { exporter = "tf2onnx", opset = 17 }',
                                'keras = { converter = "os.path:join", opset = 13, anything = 1 }')
    t = load_targets(write(tmp_path, text))["t"]
    assert t.options["keras"] == {"converter": "os.path:join", "opset": 13, "anything": 1}
    assert t.options["pytorch"]["exporter"] == "dynamo"
    for conv, match in [("os.path:nope", r"t\.keras\.converter: .*has no 'nope'"),
                        ("no_such_module_xyz:f", r"t\.keras\.converter: .*cannot import"),
                        ("os.path", r"t\.keras\.converter: 'os.path' is not 'module:function'")]:
        bad = text.replace("os.path:join", conv)
        raises(load_targets, write(tmp_path, bad), match=match)
    both = text.replace('converter = "os.path:join"',
                        'converter = "os.path:join", exporter = "tf2onnx"')
    raises(load_targets, write(tmp_path, both), match=r"t\.keras: give exporter or converter, not both")
    raises(load_targets, write(tmp_path, text.replace("opset = 13", 'opset = "13"')),
           match=r"t\.keras\.opset must be int")


def test_target_files_merge_by_name(tmp_path):
    own = write(tmp_path, """
        [onnx]
        timeout_s = 60

        [mine]
        format = "onnx"
        keras = { exporter = "tf2onnx", opset = 13 }
    """, "own.toml")
    targets = load_targets([DEFAULTS / "targets.toml", own])
    packaged = load_targets(DEFAULTS / "targets.toml")
    assert set(targets) == set(packaged) | {"mine"}
    assert targets["onnx"].timeout_s == 60.0  # merged key by key over the packaged target
    assert targets["onnx"].options == packaged["onnx"].options
    assert targets["mine"].frameworks() == ("keras",) and targets["mine"].timeout_s == 600.0


def test_unknown_target_name_lists_the_valid_ones(tmp_path):
    path = write(tmp_path, TARGETS_TOML)
    raises(select_targets, "t,nope", path, match="unknown target 'nope'; valid targets: t")
    msg = raises(select_targets, "onnx,onnx-legcy", match="unknown target 'onnx-legcy'")
    for name in ALL_TARGETS:
        assert name in msg


# --------------------------------------------------------------------------- attack tables


def test_shipped_profiles_run_every_attack():
    for name, p in load_profiles().items():
        for attack in config.ATTACK_PARAMS:
            assert p.attack(attack)["n_samples"] >= 1, (name, attack)
    assert get_profile("paper").attack("boundary")["max_iter"] == 5000  # ART's default


@pytest.mark.parametrize("old, new, match", [
    ("attack.genetic = {", "#", r"p\.attack\.genetic is missing \(every profile runs every attack\)"),
    ("attack.fgsm = {", "attack.pgd = { n_samples = 1 }\n#",
     r"unknown key p\.attack\.pgd; valid keys: boundary, fgsm, genetic"),
    ("max_iter = 3,", "max_iters = 3,", r"unknown key p\.attack\.boundary\.max_iters; valid keys: "),
    ("max_iter = 3,", "", r"p\.attack\.boundary is missing max_iter"),
    ("max_iter = 3,", "max_iter = 3.5,", r"p\.attack\.boundary\.max_iter must be int"),
    ("max_iter = 3,", "max_iter = 0,", r"p\.attack\.boundary\.max_iter must be > 0, got 0"),
    ("cifar10 = 0.01", "cifar10 = 2", r"p\.attack\.fgsm\.eps\.cifar10 must be a number in \(0, 1\]"),
    ("cifar10 = 0.01", 'cifar10 = "0.01"', r"p\.attack\.fgsm\.eps\.cifar10 must be a number in \(0, 1\]"),
    ("cifar10 = 0.01", "default = 0", r"p\.attack\.fgsm\.eps\.default must be a number in \(0, 1\]"),
    ("eps = { mnist = 0.1, cifar10 = 0.01 }", "eps = 1.5",
     r"p\.attack\.fgsm\.eps must be a number in \(0, 1\] .*got 1\.5"),
    ("eps = { mnist = 0.1, cifar10 = 0.01 }", "eps = 0", r"p\.attack\.fgsm\.eps must be > 0, got 0"),
    ("eps = { mnist = 0.1, cifar10 = 0.01 }", 'eps = "0.1"', r"p\.attack\.fgsm\.eps must be "),
    ("population = 4", "population = 1", r"genetic\.population must be at least 2"),
    ("min_words = 10", "min_words = 150", r"min_words <= max_words, got 150\.\.100"),
    ("neighbours = 4", "neighbours = 33", r"genetic\.neighbours must be at most 32, got 33"),
    ("max_modification = 0.25", "max_modification = 25",
     r"max_modification is a share of a review's words, at most 1, got 25"),
])
def test_bad_attack_table(tmp_path, old, new, match):
    text = _profile_text()
    assert old in text
    raises(load_profiles, write(tmp_path, text.replace(old, new, 1)), match=match)


def test_fgsm_eps_is_a_number_or_a_table_per_data_set(tmp_path):
    def eps(value: str):
        text = _profile_text().replace("eps = { mnist = 0.1, cifar10 = 0.01 }", f"eps = {value}")
        return load_profiles(write(tmp_path, text))["p"]

    p = eps("0.05")
    assert (p.fgsm_eps("mnist"), p.fgsm_eps("anything")) == (0.05, 0.05)
    p = eps("{ mnist = 0.1, default = 0.02 }")
    assert (p.fgsm_eps("mnist"), p.fgsm_eps("cifar10")) == (0.1, 0.02)
    p = eps("{ mnist = 0.1 }")
    assert (p.fgsm_eps("mnist"), p.fgsm_eps("cifar10")) == (0.1, None)


def test_profile_files_merge_by_name(tmp_path):
    """A project's profile of a packaged name is merged over it key by key; a new name adds one."""
    own = write(tmp_path, """
        [smoke]
        seeds = [4, 5]
        attack.fgsm.eps = { mnist = 0.2 }
        data.mnist = { n_test = 9 }

        [mine]
        seeds = [0]
        attack.fgsm = { n_samples = 1, eps = 0.1 }
        attack.boundary = { n_samples = 1, max_iter = 1, num_trial = 1, sample_size = 1, delta = 0.1, epsilon = 0.1 }
        attack.genetic = { n_samples = 1, population = 2, generations = 1, neighbours = 1, max_modification = 0.5, min_words = 1, max_words = 5 }
    """, "own.toml")
    packaged = load_profiles(DEFAULTS / "profiles.toml")
    profiles = load_profiles([DEFAULTS / "profiles.toml", own])
    assert set(profiles) == set(packaged) | {"mine"}
    smoke = profiles["smoke"]
    assert smoke.seeds == (4, 5) and smoke.sizes("mnist") == {"n_train": None, "n_test": 9}
    assert smoke.fgsm_eps("mnist") == 0.2
    # keys the project left alone stay packaged, inside an attack table too
    assert smoke.attack("fgsm")["n_samples"] == packaged["smoke"].attack("fgsm")["n_samples"]
    assert smoke.attack("genetic") == packaged["smoke"].attack("genetic")
    assert smoke.description == packaged["smoke"].description
    assert profiles["mine"].extra["hypothesis"] == {}
    # A merged mistake names the files it came from.
    bad = write(tmp_path, "[smoke]\nseeds = []\n", "bad2.toml")
    msg = raises(load_profiles, [DEFAULTS / "profiles.toml", bad], match="smoke.seeds must be")
    assert str(bad) in msg


# --------------------------------------------------------------------------- start-up checks
# What the selected models need from the profile (convcheck.plugin.options._check_profile).


def _startup_profile(tmp_path, old: str = "", new: str = ""):
    text = _profile_text()
    assert old in text
    return load_profiles(write(tmp_path, text.replace(old, new, 1)))["p"]


def test_minimal_profile_passes_the_start_up_checks(tmp_path):
    _check_profile(_startup_profile(tmp_path), tuple(ZOO))


def test_build_source_without_train_table_is_a_start_up_error(tmp_path):
    """A profile may leave a model out (it loads), but not one convcheck trains and is asked to
    run: that is a usage error naming the model, the profile and the table."""
    p = _startup_profile(tmp_path, "train.gru = {", "#")
    assert "gru" not in p.train
    with pytest.raises(ConfigError, match=r"model 'gru' is trained by convcheck \(a build source\), "
                                          r"but profile 'p' has no train\.gru table"):
        _check_profile(p, tuple(ZOO))
    _check_profile(p, ("lenet5", "lstm"))  # gru not selected: nothing is missing


@pytest.mark.parametrize("model", ["resnet18", "vgg16"])
def test_image_data_set_without_fgsm_step_is_a_start_up_error(tmp_path, model):
    p = _startup_profile(tmp_path, ", cifar10 = 0.01", "")
    assert p.fgsm_eps("cifar10") is None
    with pytest.raises(ConfigError, match=rf"profile 'p': attack\.fgsm\.eps has no entry for data "
                                          rf"set 'cifar10' \(model {model}\) and no default"):
        _check_profile(p, ("lenet5", model))
    _check_profile(p, ("lenet5", "lstm", "gru"))  # no cifar10 model selected
    with_default = _startup_profile(tmp_path, ", cifar10 = 0.01", ", default = 0.02")
    assert with_default.fgsm_eps("cifar10") == 0.02 and with_default.fgsm_eps("mnist") == 0.1
    _check_profile(with_default, tuple(ZOO))


@pytest.mark.parametrize("old, new, table, valid", [
    ("train.gru = {", "train.grux = {", "train.grux", "lenet5, resnet18, vgg16, lstm, gru"),
    ("data.imdb = {}", "data.imbd = {}", "data.imbd", "mnist, cifar10, imdb"),
    ("cifar10 = 0.01", "cifar = 0.01", "attack.fgsm.eps.cifar", "mnist, cifar10, imdb, default"),
])
def test_profile_names_an_undeclared_model_or_data_set(tmp_path, old, new, table, valid):
    """Loading takes any name (a project's own); at start-up each must be a declared model or
    one of their data sets, whichever models are selected, or a typo would silently fall back
    (to every sample, to FGSM's default step, or to no hyperparameters)."""
    p = _startup_profile(tmp_path, old, new)
    name = table.rsplit(".", 1)[1]
    for models in (tuple(ZOO), ("lenet5",)):
        with pytest.raises(ConfigError, match=rf"profile 'p': {re.escape(table)}: unknown name "
                                              rf"'{name}'; valid: {valid} \("):
            _check_profile(p, models)


def test_genetic_texts_longer_than_the_model_takes_are_a_start_up_error(tmp_path):
    p = _startup_profile(tmp_path, "max_words = 100", "max_words = 201")  # loads: no model known
    with pytest.raises(ConfigError, match=r"profile 'p': attack\.genetic\.max_words 201 exceeds "
                                          r"model lstm's sequence length 200"):
        check_attack_sizes(p, tuple(ZOO))
    check_attack_sizes(p, ("lenet5",))  # no text model selected
    # on unlabelled data the attack does not run, and its size is not checked
    check_attack_sizes(p, tuple(ZOO), labelled=lambda spec: False)
    _check_profile(_startup_profile(tmp_path, "max_words = 100", "max_words = 200"), tuple(ZOO))


def test_override_can_match_an_attack(tmp_path):
    t = tolerances(tmp_path, '[default]\nabs_p99 = 1e-6\n[[override]]\nattack = "boundary"\n'
                             'abs_p99 = 1e-5\nreason = "near the boundary"\n')
    assert t.lookup("abs_p99", model="lenet5", attack="boundary")[0] == 1e-5
    assert t.lookup("abs_p99", model="lenet5", attack="fgsm")[0] == 1e-6
    raises(tolerances, tmp_path, '[default]\nabs_p99 = 1e-6\n[[override]]\nattack = "pgd"\n'
                                 'abs_p99 = 1e-5\nreason = "x"\n',
           match=r"override\[0\]\.attack = 'pgd' is unknown; valid: fgsm, boundary, genetic")


def test_timing_rounds_come_from_the_profile_unless_given(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from convcheck.plugin import benchmarks

    assert get_profile("smoke").timing_rounds() == 2
    assert get_profile("paper").timing_rounds() is None
    path = write(tmp_path, _profile_text() + "\ntiming = { rounds = 0 }\n")
    raises(load_profiles, path, match=r"p\.timing\.rounds must be >= 1, got 0")
    path = write(tmp_path, _profile_text() + "\ntiming = { round = 3 }\n")
    raises(load_profiles, path, match=r"unknown key p\.timing\.round; valid keys: rounds, "
                                      r"samples")
    # the samples a test-set timing passes over: smoke's 128, the others' whole test set
    assert get_profile("smoke").timing_samples() == 128
    assert get_profile("standard").timing_samples() is None
    path = write(tmp_path, _profile_text() + "\ntiming = { samples = 0 }\n")
    raises(load_profiles, path, match=r"p\.timing\.samples must be >= 1, got 0")
    path = write(tmp_path, _profile_text() + "\ntiming = { samples = 1.5 }\n")
    raises(load_profiles, path, match=r"p\.timing\.samples")

    def config(args, profile):
        monkeypatch.setattr(benchmarks, "run", lambda c: SimpleNamespace(profile=profile))
        return SimpleNamespace(invocation_params=SimpleNamespace(args=args),
                               getoption=lambda name: 5 if not args else int(args[-1]))

    assert benchmarks.timing_rounds(config((), get_profile("smoke"))) == 2
    assert benchmarks.timing_rounds(config(("--benchmark-min-rounds", "7"),
                                           get_profile("smoke"))) == 7
    assert benchmarks.timing_rounds(config((), get_profile("paper"))) == 5
