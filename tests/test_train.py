"""Training is deterministic per seed, reports each epoch, and is cached across processes."""
import dataclasses
import re

import numpy as np
import pytest

from convcheck.pipeline.workbench import Workbench
from convcheck.plugin import state
from convcheck.settings import HyperParams, get_profile
from models import FRAMEWORKS

TINY = HyperParams("sgd", 0.05, 64, 2, momentum=0.9)


@pytest.fixture
def tiny_bench(tmp_path, pytestconfig):
    """A Workbench training LeNet-5 on 512 MNIST digits, with its own cache and a log."""
    smoke = get_profile("smoke")
    profile = dataclasses.replace(
        smoke, name="tiny", data={**smoke.data, "mnist": {"n_train": 512, "n_test": 256}},
        train={**smoke.train, "lenet5": TINY})
    lines = []

    sizes = {"n_train": 512, "n_test": 256}
    full = state.bench(pytestconfig).dataset("mnist")
    small = dataclasses.replace(full, x_train=full.x_train[:sizes["n_train"]],
                                y_train=full.y_train[:sizes["n_train"]],
                                x_test=full.x_test[:sizes["n_test"]],
                                y_test=full.y_test[:sizes["n_test"]])

    def make_bench(cache=tmp_path / "cache"):
        bench = Workbench(profile, None, cache, log=lines.append)
        bench._datasets["mnist"] = small
        return bench

    return make_bench, lines, tmp_path


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_same_seed_same_model_and_progress_lines(tiny_bench, framework):
    make, lines, tmp = tiny_bench
    a = make(tmp / "a").original("lenet5", framework, 0)
    b = make(tmp / "b").original("lenet5", framework, 0)
    c = make(tmp / "c").original("lenet5", framework, 1)
    x, _ = make(tmp / "a").test_set(a.spec, framework)
    out_a, out_b, out_c = (m.predictor.predict(x[:64]) for m in (a, b, c))
    np.testing.assert_array_equal(out_a, out_b, err_msg="same seed, different model")
    assert np.abs(out_a - out_c).max() > 1e-3, "seeds 0 and 1 trained the same model"
    epochs = [line for line in lines if " epoch " in line]
    assert len(epochs) == 3 * TINY.epochs, lines
    assert all(w in epochs[0] for w in ("loss", "acc", "s")), epochs[0]
    # Each epoch but the last says what is left, from its own time.
    assert re.search(r"epoch 1/2: .* ([0-9.]+)s, ~[0-9]+s left$", epochs[0]), epochs[0]
    assert epochs[1].endswith("s") and "left" not in epochs[1], epochs[1]


def test_second_run_loads_from_cache_and_corrupt_entry_is_retrained(tiny_bench):
    make, lines, _ = tiny_bench
    first = make().original("lenet5", "pytorch", 0)
    trained = sum(line.startswith("training ") for line in lines)
    second = make().original("lenet5", "pytorch", 0)  # a new process would do the same
    assert sum(line.startswith("training ") for line in lines) == trained == 1, lines
    assert second.entry == first.entry
    first.path.write_bytes(first.path.read_bytes()[:-10])  # truncated weights
    make().original("lenet5", "pytorch", 0)
    assert any("corrupt" in line and "rebuilding" in line for line in lines), lines
    assert sum(line.startswith("training ") for line in lines) == 2, lines


def test_plan_counts_what_is_not_built_and_each_build_says_what_is_left(tiny_bench):
    from convcheck.pipeline.cases import Case

    make, lines, _ = tiny_bench
    bench = make()
    cases = [Case("lenet5", fw, s) for fw in FRAMEWORKS for s in (0, 1)]
    assert bench.plan(cases) == {"trainings": 4}
    bench.original("lenet5", "pytorch", 0)
    done = [line for line in lines if line.startswith("trained ")]
    assert re.fullmatch(r"trained lenet5-pytorch-s0 in [0-9.]+s \(1 of 4 trainings built, "
                        r"3 to go: ~[0-9]+s at this run's mean of [0-9]+s\)", done[-1]), done
    # A later session plans only what the cache lacks; a stale entry counts as unbuilt.
    again = make()
    assert again.plan(cases) == {"trainings": 3}
    stale = dataclasses.replace(again.profile, train={**again.profile.train,
                                                       "lenet5": dataclasses.replace(TINY, lr=0.1)})
    assert dataclasses.replace(again, profile=stale, progress=type(again.progress)()
                               ).plan(cases[:1]) == {"trainings": 1}
