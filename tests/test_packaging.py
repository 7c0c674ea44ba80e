"""convcheck as a package: the wheel holds the convcheck package alone (its defaults as data, its
plugin as a pytest11 entry point), a non-editable install runs a project outside the source
tree, and the plugin is inert in a session that does not use it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("CONVCHECK_", "PYTEST_"))}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = out.glob("convcheck-*.whl")
    return path


def test_wheel_is_the_convcheck_package_alone(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"convcheck"}, tops
    for data in ("profiles", "tolerances", "targets", "expected_failures"):
        assert f"convcheck/defaults/{data}.toml" in names
    assert "convcheck/suite/equivalence.py" in names and "convcheck/plugin/__init__.py" in names
    (ep,) = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(ep).decode()
    assert "[pytest11]\nconvcheck = convcheck.plugin" in text, text


@pytest.fixture(scope="module")
def wheel_venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (not editable). Its dependencies are this
    environment's, reached through a .pth line (installing 3 GB again would test pip, not
    convcheck); the source tree is on no path."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    target = site
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)
    return venv


def test_non_editable_install_runs_a_project_elsewhere(wheel_venv, tmp_path):
    project = tmp_path / "shipped-onnx"
    shutil.copytree(ROOT / "examples" / "shipped-onnx", project,
                    ignore=shutil.ignore_patterns(".cache", "reports"))
    py = wheel_venv / "bin" / "python"
    where = subprocess.run([str(py), "-c", "import convcheck, sys; print(convcheck.__file__)"],
                           cwd=project, capture_output=True, text=True, env=_env())
    assert str(wheel_venv) in where.stdout, where.stdout + where.stderr
    proc = subprocess.run([str(py), "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "--benchmark-disable", "-k", "equivalence or accuracy or size"],
                          cwd=project, capture_output=True, text=True, timeout=600, env=_env())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert " passed" in out and "error" not in out.lower().split("passed")[-1], out[-2000:]


INERT_TEST = '''
import sys

def test_nothing_of_convcheck_was_imported():
    heavy = [m for m in ("torch", "tensorflow", "keras", "onnxruntime", "coremltools",
                         "convcheck.pipeline.workbench", "convcheck.plugin.session", "numpy")
             if m in sys.modules]
    assert not heavy, heavy
'''


def test_plugin_is_inert_in_an_unrelated_project(tmp_path):
    """A project with no convcheck settings: no framework import, no header line, no test."""
    (tmp_path / "test_other.py").write_text(INERT_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_env())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 passed" in out and "convcheck:" not in out, out
    assert "plugins:" in out and "convcheck-" in out, out  # installed, and idle


def test_convcheck_option_turns_it_on_without_settings(tmp_path):
    """--convcheck in a project that declares no model: one usage error saying so."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--convcheck", "--collect-only", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_env())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4 and "convcheck: " in out and "no model declared" in out, out
