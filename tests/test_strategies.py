"""Tests of convcheck.fuzz.strategies and convcheck.fuzz.properties without any trained model, and of the
profiles' `hypothesis` table and the Hypothesis settings profiles (convcheck/plugin/hypothesis.py).

The strategies must cover the input domain they promise and stay inside it; the runner must find,
shrink, save and word a counterexample on a predictor pair that is known to differ.
"""
from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from minimal_profile import minimal_profile

from convcheck import checks
from convcheck.fuzz import properties, strategies
from convcheck.fuzz.strategies import IMAGE_KINDS, TOKEN_KINDS, Image, Tokens
from convcheck.settings import ConfigError, load_profiles
from models import MAX_LEN, OOV_ID, PAD_ID, VOCAB_SIZE, get_spec

FAST = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
LENET5, RESNET18, LSTM = get_spec("lenet5"), get_spec("resnet18"), get_spec("lstm")


# --------------------------------------------------------------------------- strategies


@FAST
@given(data=st.data())
def test_image_batches_stay_in_the_domain(data):
    spec = data.draw(st.sampled_from([LENET5, RESNET18]), label="spec")
    framework = data.draw(st.sampled_from(["pytorch", "keras"]), label="framework")
    recipes = data.draw(strategies.batches(spec, 8), label="batch")
    x = strategies.render(recipes, spec, framework)
    assert 1 <= len(recipes) <= 8
    assert x.dtype == np.float32
    assert x.shape == (len(recipes), *spec.framework_input_shape(framework))
    assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0


@FAST
@given(data=st.data())
def test_token_batches_are_pre_padded_ids_below_the_vocabulary(data):
    recipes = data.draw(strategies.batches(LSTM, 8), label="batch")
    x = strategies.render(recipes, LSTM, "pytorch")
    assert x.dtype == np.int64 and x.shape == (len(recipes), MAX_LEN)
    assert x.min() >= 0 and x.max() < VOCAB_SIZE
    for r, row in zip(recipes, x):
        assert (row[: MAX_LEN - r.length] == PAD_ID).all(), r  # pre-padding
        if r.kind != "chosen":  # only chosen bodies may hold PAD_ID themselves
            assert (row[MAX_LEN - r.length:] != PAD_ID).all(), r


@FAST
@given(recipe=st.one_of(strategies.image_recipes(channels=3), strategies.token_recipes()))
def test_a_recipe_is_reproducible_from_its_repr(recipe):
    again = eval(repr(recipe), {"Image": Image, "Tokens": Tokens})
    assert again == recipe
    spec = RESNET18 if isinstance(recipe, Image) else LSTM
    np.testing.assert_array_equal(strategies.render([recipe], spec, "keras"),
                                  strategies.render([again], spec, "keras"))


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_every_image_kind_is_drawn(kind):
    found = find(strategies.image_recipes(), lambda r: r.kind == kind,
                 settings=settings(database=None, max_examples=500))
    assert found.kind == kind


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_every_token_kind_is_drawn(kind):
    found = find(strategies.token_recipes(), lambda r: r.kind == kind,
                 settings=settings(database=None, max_examples=500))
    assert found.kind == kind


@pytest.mark.parametrize("length", [0, 1, MAX_LEN // 2, MAX_LEN])
def test_boundary_lengths_are_drawn(length):
    found = find(strategies.token_recipes(), lambda r: r.length == length,
                 settings=settings(database=None, max_examples=2000))
    assert found.length == length


def test_saturated_constant_and_sparse_images():
    shape = (28, 28, 1)
    assert (strategies.render_image(Image("black"), shape) == 0).all()
    assert (strategies.render_image(Image("white"), shape) == 1).all()
    assert (strategies.render_image(Image("constant", value=0.25), shape) == 0.25).all()
    sparse = strategies.render_image(Image("sparse", value=1.0, density=0.05, seed=3), shape)
    assert set(np.unique(sparse)) <= {0.0, 1.0} and 0 < (sparse == 1).sum() < 0.2 * sparse.size
    coarse = strategies.render_image(Image("coarse", grid=(1.0,) + (0.0,) * 15), shape)
    assert (coarse[:7, :7] == 1).all() and coarse[7:, :].sum() == 0 and coarse[:, 7:].sum() == 0


def test_every_token_length_renders():
    for length in range(MAX_LEN + 1):
        row = strategies.render_tokens(Tokens("oov", length=length))
        assert (row == OOV_ID).sum() == length and (row == PAD_ID).sum() == MAX_LEN - length
    with pytest.raises(ValueError, match="outside 0..200"):
        strategies.render_tokens(Tokens("chosen", length=MAX_LEN + 1, ids=(1,) * (MAX_LEN + 1)))


def test_batches_need_a_positive_size():
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        strategies.batches(LENET5, 0)


# --------------------------------------------------------------------------- the runner


class Softmax:
    """A stand-in model: softmax of a fixed linear map of the flattened input."""

    name = "fake"

    def __init__(self, n_in: int, fault: str | None = None):
        self.w = np.random.default_rng(0).standard_normal((n_in, 3)).astype(np.float32) / 30
        self.fault = fault

    def predict(self, x):
        z = x.reshape(len(x), -1).astype(np.float32) @ self.w
        if self.fault == "bright":  # wrong only where some pixel is brighter than 0.9
            z = np.where((x.reshape(len(x), -1) > 0.9).any(1, keepdims=True), z[:, ::-1], z)
        e = np.exp(z - z.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)).astype(np.float32)


def _tol(key):
    return {"abs_max": 1e-5, "abs_mean": 1e-6, "abs_p99": 1e-6, "rel_max": 1e-2,
            "rel_mean": 1e-4, "rel_floor": 1e-6, "ptol_atol": 1e-6, "ptol_rtol": 1e-4,
            "ptol_budget": 0.0, "label_disagreement": 0.0, "decision_margin": 2e-5}[key], "test"


SETTINGS = settings(max_examples=50, derandomize=True, database=None, deadline=None)


def test_run_property_passes_an_equivalent_pair_and_drops_a_stale_counterexample(tmp_path):
    stale = [tmp_path / "fake-s0.npz", tmp_path / "fake-s0.py"]
    for f in stale:
        f.write_text("an earlier run's counterexample")
    good = Softmax(784)
    stats = properties.run_property(good, good, LENET5, "pytorch", "fake-s0", _tol, max_batch=4,
                                    settings=SETTINGS, save_dir=tmp_path)
    edges = len(strategies.edge_batches(LENET5))  # checked before the search's 50
    assert stats.examples == 50 + edges and 50 + edges <= stats.samples <= 200 + edges
    assert stats.worst["abs_max"] == 0.0
    assert properties.verdict("fake-s0", stats, None).passed
    assert not any(f.exists() for f in stale)


def test_the_ci_profile_draws_the_same_batches_on_every_run(tmp_path):
    """Same examples, so the same verdicts, on every rerun (and no database carried over)."""
    from convcheck.plugin import hypothesis as plugin
    plugin.register_profiles(tmp_path)

    class Recording(Softmax):
        def __init__(self):
            super().__init__(784)
            self.seen = []

        def predict(self, x):
            self.seen.append(x.tobytes())
            return super().predict(x)

    runs = []
    for _ in range(2):
        m = Recording()
        properties.run_property(m, Softmax(784), LENET5, "pytorch", "fake-s0", _tol,
                                max_batch=4, save_dir=tmp_path,
                                settings=settings(settings.get_profile("ci"), max_examples=20))
        runs.append(m.seen)
    assert len(runs[0]) >= 20 and runs[0] == runs[1]


def test_a_label_on_the_decision_boundary_is_not_judged_on_drawn_inputs():
    """A near-uniform output (margin 1e-6 < decision_margin 2e-5) that a faithful conversion,
    within abs_max, labels the other way: output equivalence judges it, the label is left out."""
    ref = np.array([[0.3333340, 0.3333330, 0.333333], [0.9, 0.05, 0.05]], dtype=np.float32)
    got = np.array([[0.3333330, 0.3333340, 0.333333], [0.9, 0.05, 0.05]], dtype=np.float32)
    on_test_set = checks.label_agreement("m", ref, got, _tol)
    assert on_test_set.failed_metrics() == {"label_disagreement"}
    drawn = checks.label_agreement("m", ref, got, _tol, near_boundary=True)
    assert drawn.passed and drawn.measured["n_boundary"] == 1
    assert drawn.measured["n_samples"] == 1
    # a label flipped with a clear margin still fails, with the boundary note
    got[1] = [0.05, 0.9, 0.05]
    drawn = checks.label_agreement("m", ref, got, _tol, near_boundary=True)
    assert drawn.failures == ["m: label_disagreement = 1 > 0 (test), 1 of 1 samples, first [1]; "
                              "1 of 2 within decision_margin 2e-05 of the boundary left out"]


def test_aggregates_are_recorded_not_judged():
    """On one sample abs_mean is abs_max: a 3e-6 error passes abs_max 1e-5, not abs_mean 1e-6."""
    good = Softmax(784)

    class Off(Softmax):
        def predict(self, x):
            y = super().predict(x)
            return y + np.array([3e-6, -3e-6, 0], dtype=np.float32)

    x = np.full((1, 1, 28, 28), 0.5, dtype=np.float32)
    tol = lambda k: (1e-4, "test") if k == "ptol_rtol" else _tol(k)  # noqa: E731
    verdicts, _, _ = properties.equivalence(good, Off(784), x, "fake-s0", tol)
    eq = next(v for v in verdicts if v.check == "output_equivalence")
    assert eq.measured["abs_mean"] > 1e-6 and eq.measured["abs_max"] < 1e-5
    assert not [f for v in verdicts for f in v.failures if "abs_mean" in f or "abs_p99" in f]


def test_run_property_shrinks_saves_and_words_a_counterexample(tmp_path):
    good, bad = Softmax(784), Softmax(784, fault="bright")
    with pytest.raises(properties.PropertyFailed) as info:  # the search alone (the edge
        properties.run_property(good, bad, LENET5, "pytorch", "fake-s0", _tol, max_batch=4,
                                settings=SETTINGS, save_dir=tmp_path,  # batches would find it)
                                loaders=("Softmax(784)", "Softmax(784, 'bright')"), edges=False)
    e = info.value
    ce = e.counterexample
    # Shrunk to one all-white image: the simplest input with a pixel over 0.9.
    assert len(ce.recipes) == 1 and ce.x.shape == (1, 1, 28, 28)
    assert (ce.x == 1).all(), ce.recipes
    saved = np.load(ce.path)
    np.testing.assert_array_equal(saved["x"], ce.x)
    assert ce.path == tmp_path / "fake-s0.npz" and ce.path.with_suffix(".py").exists()
    assert "Softmax(784, 'bright')" in ce.snippet and str(ce.path) in ce.snippet
    # One grammar: "<case>: <metric> = <value> > <tolerance> (<source>)".
    assert any(re.match(r"fake-s0: abs_max = \S+ > 1e-05 \(test\)", f) for f in e.summary)
    assert e.summary[-1].startswith(f"fake-s0: counterexample = {ce.recipes!r}")
    # Hypothesis' own report rides along, with the labelled draw in the recipes' short repr.
    assert re.search(r"(Falsifying example|Failing test case)", str(e)), str(e)
    assert f"Draw 1 (batch): {ce.recipes!r}" in str(e), str(e)
    v = properties.verdict("fake-s0", e.stats, e)
    assert not v.passed and "abs_max" in v.failed_metrics()
    assert v.measured["counterexample"] == repr(ce.recipes)


def test_shrinking_stops_at_its_budget_with_a_failing_counterexample_said_so(tmp_path):
    """A budget of 0 s: the first failing batch found is the counterexample, unshrunk; the
    verdict is the same, the summary says why the batch is not the simplest, Hypothesis' own
    warning (worded for its 300 s) is not printed, and its limit is put back after."""
    from hypothesis.internal.conjecture import engine

    limit = engine.MAX_SHRINKING_SECONDS
    good, bad = Softmax(784), Softmax(784, fault="bright")
    runs = {}
    for budget in (0.0, properties.SHRINK_SECONDS):
        with pytest.raises(properties.PropertyFailed) as info:
            properties.run_property(good, bad, LENET5, "pytorch", "fake-s0", _tol, max_batch=4,
                                    settings=SETTINGS, edges=False, shrink_seconds=budget)
        runs[budget] = info.value
    cut, whole = runs[0.0], runs[properties.SHRINK_SECONDS]
    assert engine.MAX_SHRINKING_SECONDS == limit
    assert cut.stats.shrink_stopped and not whole.stats.shrink_stopped
    assert cut.stats.examples < whole.stats.examples, (cut.stats.examples, whole.stats.examples)
    ce = cut.counterexample
    assert (ce.x > 0.9).any() and not (ce.x == 1).all()  # failing, and not shrunk to white
    assert any(re.match(r"fake-s0: abs_max = \S+ > 1e-05 \(test\)", f) for f in cut.summary)
    assert cut.summary[-1].endswith(
        "executions; shrinking stopped at its 0 s budget)"), cut.summary[-1]
    assert "Hypothesis has spent more than" not in str(cut)
    assert properties.verdict("fake-s0", cut.stats, cut).measured["shrink_stopped"] is True
    assert "shrink_stopped" not in properties.verdict("fake-s0", whole.stats, whole).measured


# --------------------------------------------------------------------------- configuration


def _profile(extra: str = "") -> str:
    return minimal_profile(seeds="[0]", lines=(extra,), mnist="{}", lr=0.1, batch_size=8)


def test_shipped_profiles_size_the_property_tests():
    for name, p in load_profiles().items():
        table = p.extra["hypothesis"]
        assert set(table) == {"max_batch", "max_examples"}, name
        assert table["max_batch"] >= 1 and table["max_examples"] >= 1
    assert load_profiles()["smoke"].extra["hypothesis"] == {"max_batch": 8, "max_examples": 10}


@pytest.mark.parametrize("table, match", [
    ("hypothesis = { max_batches = 8 }", r"unknown key p\.hypothesis\.max_batches; valid keys: "
                                         r"max_batch, max_examples"),
    ('hypothesis = { max_batch = "8" }', r"p\.hypothesis\.max_batch must be int"),
    ("hypothesis = { max_examples = 2.5 }", r"p\.hypothesis\.max_examples must be int"),
    ("hypothesis = { max_examples = 0 }", r"p\.hypothesis\.max_examples must be >= 1, got 0"),
    ("hypothesis = 3", r"p\.hypothesis must be dict"),
])
def test_bad_hypothesis_table(tmp_path, table, match):
    path = tmp_path / "profiles.toml"
    path.write_text(textwrap.dedent(_profile(table)))
    with pytest.raises(ConfigError, match=match):
        load_profiles(path)


def test_hypothesis_profiles_are_registered_and_ci_is_the_default_on_ci(monkeypatch, tmp_path):
    from convcheck.plugin import hypothesis as plugin

    for name in plugin.PROFILES:
        settings.get_profile(name)  # raises if unknown
    ci = settings.get_profile("ci")  # the same examples on every rerun: the same verdicts
    assert ci.derandomize and ci.print_blob and ci.database is None
    assert not settings.get_profile("dev").derandomize
    # Registered again with "ci" loaded (an in-process pytester run): dev stays dev.
    current = settings.get_current_profile_name()
    settings.load_profile("ci")
    try:
        plugin.register_profiles(tmp_path)
        assert not settings.get_profile("dev").derandomize
    finally:
        settings.load_profile(current)
    assert all(settings.get_profile(n).deadline is None for n in plugin.PROFILES)
    monkeypatch.setenv("CI", "true")
    assert plugin.default_profile() == "ci"
    monkeypatch.delenv("CI")
    assert plugin.default_profile() == "dev"


# --------------------------------------------------------------------------- declared token domains

def _token_spec(**input_fields):
    from pathlib import Path

    from convcheck.declarations.spec import parse_model

    fields = {"shape": [12], "layout": "tokens", "vocab_size": 1000} | input_fields
    return parse_model("tiny-bert", {"input": fields, "task": {"num_classes": 2},
                                     "data": {"loader": "builtins:dict"},
                                     "pytorch": {"load": "builtins:dict"}},
                       "test", Path("."))


@FAST
@given(data=st.data())
def test_token_batches_keep_to_the_declared_vocabulary_ids_and_side(data):
    """A 1,000-word model, right-padded with id 5, OOV 7: no id of IMDb's 10,000 ever appears,
    every sequence holds a word (no empty one unless declared), padding only at the end."""
    spec = _token_spec(pad_id=5, oov_id=7, padding="post")
    x = strategies.render(data.draw(strategies.batches(spec, 8), label="batch"), spec, "pytorch")
    assert x.shape[1:] == (12,) and x.dtype == np.int64
    assert x.min() >= 0 and x.max() < 1000
    for row in x:
        body = np.flatnonzero(row != 5)
        assert len(body) >= 1, row
        # chosen bodies may hold the pad id itself; every other kind's padding is a suffix
        assert (row[body.max() + 1:] == 5).all(), row


def test_token_domain_ids_and_empty_sequences():
    spec = _token_spec(pad_id=5, oov_id=7, padding="post")
    domain = strategies.TokenDomain.of(spec)
    assert (domain.pad_id, domain.oov_id, domain.padding, domain.empty) == (5, 7, "post", False)
    assert domain.extreme_ids == (7, 0, 999) and 5 not in domain.words and 7 not in domain.words
    row = strategies.render_tokens(Tokens("oov", length=3), domain)
    assert row.tolist() == [7, 7, 7] + [5] * 9
    found = find(strategies.token_recipes(domain), lambda r: True)
    assert found.length >= 1  # simplest recipe is one token: empty is not declared valid
    empty = strategies.TokenDomain.of(_token_spec(empty=True))
    assert find(strategies.token_recipes(empty), lambda r: True).length == 0
    with pytest.raises(ValueError, match="outside the vocabulary"):
        strategies.render_tokens(Tokens("repeat", length=2, token=1000), domain)


def test_padding_side_is_what_the_data_shows():
    from convcheck.data.declared import padding_side

    post = np.array([[3, 4, 0, 0], [5, 0, 0, 0], [6, 7, 8, 9]])
    assert padding_side(post, 0) == "post" and padding_side(post[:, ::-1], 0) == "pre"
    spec = _token_spec()  # undeclared: the side the data shows wins over the IMDb default
    assert strategies.TokenDomain.of(spec, "post").padding == "post"
    assert strategies.TokenDomain.of(_token_spec(padding="pre"), "post").padding == "pre"


def test_an_original_that_fails_on_a_drawn_input_is_a_domain_problem():
    """The original raising (an id past its embedding) is reported as the input lying outside
    the model's domain, never as the conversion diverging."""
    class Embedding:
        def predict(self, x):
            if x.max() >= 500:
                raise IndexError("index out of range in self")
            return np.full((len(x), 2), 0.5, np.float32)

    x = np.array([[1, 2, 999]])
    verdicts, _, _ = properties.equivalence(Embedding(), Embedding(), x, "tiny-onnx",
                                            lambda k: (0.0, "t"))
    (v,) = verdicts
    assert v.check == "input_domain" and v.failed == ["input_domain"]
    assert "the original itself fails" in v.message() and "not a divergence" in v.message()
    assert "IndexError: index out of range in self" in v.message()


def test_label_checks_that_compared_nothing_fail():
    """A property run whose every drawn sample lay within decision_margin compared no label:
    it fails on labels_compared, not passes; so does a test-set label check over no sample."""
    stats = properties.Stats(examples=3, samples=5, label_batches=3, labels_compared=0)
    v = properties.verdict("m-onnx", stats, None)
    assert v.failed == ["labels_compared"] and "no label was compared" in v.message()
    stats.labels_compared = 4
    assert properties.verdict("m-onnx", stats, None).passed
    empty = np.zeros((0, 3), np.float32)
    v = checks.label_agreement("m-onnx", empty, empty, lambda k: (0.0, "t"))
    assert v.failed == ["label_disagreement"] and "no sample to compare" in v.message()


def test_the_edge_batches_are_checked_first_in_every_profile(tmp_path):
    """A fault only a white image shows is found before the search draws anything, and said to
    be an edge batch (no shrinking: one image is already minimal)."""
    good, bad = Softmax(784), Softmax(784, fault="bright")
    with pytest.raises(properties.PropertyFailed) as info:
        properties.run_property(good, bad, LENET5, "pytorch", "fake-s0", _tol, max_batch=4,
                                settings=SETTINGS, save_dir=tmp_path)
    ce = info.value.counterexample
    assert ce.recipes == [strategies.Image("white")], ce.recipes
    assert info.value.summary[-1].startswith(
        "fake-s0: counterexample = [Image(kind='white')] (a fixed edge batch, checked before "
        "the search)"), info.value.summary
    assert info.value.stats.examples == 2  # black passed, white failed
