"""Model declarations (convcheck.declarations.spec, convcheck.data.declared, convcheck.settings.project): every mistake is
one error naming the model and the field; a team's arrays are checked against the declaration;
settings are found where the README says, convcheck.toml winning over pyproject.toml."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from convcheck.data import DataError
from convcheck.data import declared
from convcheck.declarations.spec import SpecError, parse_model
from convcheck.settings import project

GOOD = {"input": {"shape": [4], "layout": "features", "range": [0.0, 1.0]},
        "task": {"num_classes": 3}, "data": {"loader": "json:loads"},
        "pytorch": {"load": "json:loads"}}


def parse(body: dict, tmp_path: Path = Path(".")):
    return parse_model("m", body, "test.toml", tmp_path)


def with_(path: str, value):
    body = {k: dict(v) if isinstance(v, dict) else v for k, v in GOOD.items()}
    *head, last = path.split(".")
    table = body
    for k in head:
        table = table[k]
    if value is None:
        del table[last]
    else:
        table[last] = value
    return body


def test_a_good_declaration():
    spec = parse(GOOD)
    assert (spec.kind, spec.task.width, spec.frameworks) == ("features", 3, ("pytorch",))
    assert spec.sources["pytorch"].seeded is False and spec.output_shape(5) == (5, 3)


@pytest.mark.parametrize("path, value, match", [
    ("input", None, r"<model>: missing input"),
    ("colour", "red", r"<model>\.colour: unknown field; valid: "),
    ("input.shape", [0, 4], r"input\.shape: must be a non-empty list of positive integers"),
    ("input.layout", "hwc", r"input\.layout: 'hwc' unknown; valid: nhwc, nchw, tokens"),
    ("input.range", [1, 0], r"input\.range: must be \[low, high\] with low < high"),
    ("input.vocab_size", 100, r"input\.vocab_size: only token inputs have a vocabulary"),
    ("task.num_classes", 1, r"task\.num_classes: a classifier needs num_classes >= 2, got 1"),
    ("task.kind", "ranking", r"task\.kind: 'ranking' unknown; valid: classification, regression"),
    ("task.outputs", 2, r"task\.outputs: a classifier's output width is num_classes"),
    ("pytorch.file", "x.pt", r"pytorch: give exactly one of build, load, file"),
    ("pytorch.load", "nosuchmodule_xyz:f", r"pytorch\.load: 'nosuchmodule_xyz:f': cannot import "
                                            r"'nosuchmodule_xyz'"),
    ("pytorch.load", "json:nothing", r"pytorch\.load: 'json:nothing': module 'json' has no"),
    ("pytorch.load", "json", r"pytorch\.load: 'json' is not 'module:function'"),
    ("pytorch.layout", "nhw", r"pytorch\.layout: 'nhw' unknown"),
    ("markers", ["not an identifier"], r"markers: must be a list of identifiers"),
])
def test_each_mistake_names_the_model_and_the_field(path, value, match):
    with pytest.raises(SpecError, match=r"^test\.toml: model 'm': " + match):
        parse(with_(path, value))


def test_missing_files_are_named(tmp_path):
    with pytest.raises(SpecError, match=r"pytorch\.file: no such file: .*model\.pt2"):
        parse(with_("pytorch", {"file": "model.pt2"}), tmp_path)
    import shutil

    shutil.copy(Path(__file__).parent.parent / "examples" / "shipped-onnx" / "model.pt",
                tmp_path / "m.pt")  # a real TorchScript file: only the artifact is wrong
    with pytest.raises(SpecError, match=r"pytorch\.artifacts\.shipped: model\.bin: unknown format"):
        parse(with_("pytorch", {"file": "m.pt", "artifacts": {"shipped": "model.bin"}}), tmp_path)
    with pytest.raises(SpecError, match=r"data\.npz: no such file"):
        parse(with_("data", {"npz": "none.npz"}), tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(SpecError, match=r"pytorch\.file: empty\.pt is no saved model convcheck "
                                        r"knows, not a TorchScript file"):
        parse(with_("pytorch", {"file": "empty.pt"}), tmp_path)


def test_regression_task_has_no_classes():
    spec = parse(with_("task", {"kind": "regression", "outputs": 2}))
    assert not spec.task.classification and spec.output_shape(3) == (3, 2)
    with pytest.raises(SpecError, match=r"task\.outputs: the output width"):
        parse(with_("task", {"kind": "regression"}))


# --------------------------------------------------------------------------- data


def load(spec, arrays: dict, tmp_path: Path):
    np.savez(tmp_path / "d.npz", **arrays)
    spec = parse_model("m", {**GOOD, "data": {"npz": "d.npz"}}, "test.toml", tmp_path)
    return declared.load_for(spec, None, tmp_path, n_train=None, n_test=None)


def test_team_arrays_are_checked_against_the_declaration(tmp_path):
    x = np.random.default_rng(0).random((10, 4)).astype(np.float32)
    y = np.arange(10) % 3
    ds = load(GOOD, {"x": x, "y": y}, tmp_path)
    assert ds.x_test.shape == (10, 4) and len(ds.x_train) == 0 and ds.y_test.dtype == np.int64
    for arrays, match in (
            ({"x": x[:, :3], "y": y}, r"x_test samples have shape \(3,\), but input\.shape declares \[4\]"),
            ({"x": x, "y": y[:9]}, r"x_test has 10 samples but 9 labels"),
            ({"x": x, "y": y + 1}, r"labels of x_test span 1\.\.3, outside 0\.\.2"),
            ({"x": x * 2, "y": y}, r"x_test values span .* outside input\.range \[0, 1\]"),
            ({"y": y}, r"no evaluation samples \(array x or x_test\)"),
            ({"x": x, "z": y}, r"unknown array 'z'")):
        with pytest.raises(DataError, match=match):
            load(GOOD, arrays, tmp_path)


# --------------------------------------------------------------------------- settings


def test_convcheck_toml_wins_over_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.convcheck]\nprofile = "standard"\n')
    assert project.discover(tmp_path).settings == {"profile": "standard"}
    (tmp_path / "convcheck.toml").write_text('profile = "paper"\n')
    p = project.discover(tmp_path)
    assert p.settings == {"profile": "paper"} and p.source.name == "convcheck.toml"


@pytest.mark.parametrize("text, match", [
    ("profile = 3\n", r"profile must be a str"),
    ("colour = 'red'\n", r"unknown key 'colour'; valid keys: "),
    ("tolerances = 'none.toml'\n", r"tolerances = 'none.toml': no such file"),
    ("profile = \n", r"malformed TOML"),
])
def test_bad_settings_are_named(tmp_path, text, match):
    (tmp_path / "convcheck.toml").write_text(text)
    with pytest.raises(project.ProjectError, match=match):
        project.discover(tmp_path)


PROJECT = """
[model.tiny]
input = {{ shape = [4], layout = "features", range = [0.0, 1.0] }}
task = {{ num_classes = {classes} }}
data = {{ loader = "tiny:data" }}
pytorch = {{ load = "tiny:model" }}
targets = []
"""
TINY = """
import numpy as np, torch

def data():
    x = np.random.default_rng(0).random((8, 4)).astype(np.float32)
    return {"x": x, "y": np.arange(8) % 3}

def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1))
"""


def test_output_shape_that_disagrees_with_the_task_fails_naming_the_field(tmp_path):
    """A classifier declared with 5 classes whose model returns 3: every case of it fails with
    the declared and the real shape (the model has to run for this to be known)."""
    (tmp_path / "convcheck.toml").write_text(PROJECT.format(classes=5))
    (tmp_path / "tiny.py").write_text(textwrap.dedent(TINY))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_c.py").write_text("from convcheck.suite.originals import *\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert re.search(r"model 'tiny': pytorch: the model returns shape \(2, 3\) on 2 samples, "
                     r"but task\.num_classes = 5 declares \(2, 5\)", out), out


def test_token_domain_fields_are_checked():
    tokens = {"shape": [12], "layout": "tokens", "vocab_size": 100}
    with pytest.raises(SpecError, match=r"input\.padding: 'left' unknown; valid: pre, post"):
        parse(with_("input", tokens | {"padding": "left"}))
    with pytest.raises(SpecError, match=r"input\.empty: must be true or false, got 'yes'"):
        parse(with_("input", tokens | {"empty": "yes"}))
    with pytest.raises(SpecError, match=r"input\.oov_id: must differ from pad_id \(3\)"):
        parse(with_("input", tokens | {"pad_id": 3, "oov_id": 3}))
    with pytest.raises(SpecError, match=r"input\.padding: only token inputs have it"):
        parse(with_("input", {"shape": [4], "layout": "features", "padding": "post"}))
    spec = parse(with_("input", tokens | {"padding": "post", "empty": True}))
    assert (spec.input.padding, spec.input.empty) == ("post", True)
