"""One root cause, one failure: a conversion that fails fails test_converts with the
converter's own message, and every other test of that conversion skips naming it; a conversion
an exporter cannot take is said before converting. Run on a team project (a copy of
examples/shipped-onnx) with plain pytest, as a team would."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.test_bad_input import project, pytest_run

BROKEN = '''
def to_onnx(model, destination, options):
    raise RuntimeError("the team's converter says no: unsupported op Foo")
'''
TARGETS = '''
[broken]
format = "onnx"
pytorch = { converter = "broken:to_onnx" }
'''


def outcomes(junit) -> dict:
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kind, msg = "passed", ""
        for k in ("failure", "error", "skipped"):
            el = case.find(k)
            if el is not None:
                kind, msg = k, (el.get("message") or "") + (el.text or "")
                break
        out[case.get("name")] = (kind, msg)
    return out


def test_a_failed_conversion_is_one_failure(tmp_path):
    d = project(tmp_path, 'targets = "targets.toml"\n', **{"broken.py": BROKEN, "targets.toml": TARGETS})
    toml = d / "convcheck.toml"
    toml.write_text(toml.read_text().replace('targets = []', 'targets = ["broken"]'))
    junit = tmp_path / "junit.xml"
    proc = pytest_run("-q", "--benchmark-disable", f"--junitxml={junit}", "-k", "broken",
                      cwd=d)
    out = proc.stdout + proc.stderr
    res = outcomes(junit)
    case = "digits-mlp-pytorch-broken"
    assert res[f"test_converts[{case}]"][0] == "failure", out[-3000:]
    assert "the team's converter says no: unsupported op Foo" in res[f"test_converts[{case}]"][1]
    others = {t: r for t, r in res.items() if case in t and not t.startswith("test_converts[")
              and "-no-attack" not in t}  # no attack applies to the model: said apart
    assert others, sorted(res)
    for test, (kind, msg) in others.items():
        assert kind == "skipped", (test, kind, msg[:500])
        assert f"see test_converts[{case}]" in msg, (test, msg)
    assert not [t for t, (k, _) in res.items() if k == "error"], out[-3000:]
    assert proc.returncode == 1


def test_needing_a_failed_conversion_fails_when_its_owner_is_not_run(tmp_path):
    """With test_converts deselected, the failure is not only skipped: the test that needs it
    fails with the converter's message."""
    d = project(tmp_path, 'targets = "targets.toml"\n', **{"broken.py": BROKEN, "targets.toml": TARGETS})
    toml = d / "convcheck.toml"
    toml.write_text(toml.read_text().replace('targets = []', 'targets = ["broken"]'))
    junit = tmp_path / "junit.xml"
    pytest_run("-q", "--benchmark-disable", f"--junitxml={junit}", "-k",
               "test_output_equivalence and broken", cwd=d)
    (kind, msg), = outcomes(junit).values()
    assert kind == "error" or kind == "failure", (kind, msg)
    assert "unsupported op Foo" in msg and "is not in this run" in msg, msg
