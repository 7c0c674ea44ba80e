"""A repro bundle for a failing ONNX conversion: everything needed to see the failure again on
another machine, with onnxruntime and numpy alone (no framework, no convcheck, no training).

<run dir>/bundles/<case>/ holds the failing inputs, the original's and the converted model's
outputs on them (as this run computed them), the artifact itself, the localisation, the
library versions, the bound, and reproduce.py, which runs the artifact on the inputs, compares
with the original's outputs and exits 1 when the bound is exceeded, printing its numbers.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

BUNDLES = "bundles"

_SCRIPT = '''"""Reproduce {case}'s failing comparison: onnxruntime and numpy only.

python reproduce.py   (exit 1: the conversion still differs from the original beyond the bound)
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

here = Path(__file__).resolve().parent
facts = json.loads((here / "bundle.json").read_text())
x = np.load(here / "inputs.npy")
original = np.load(here / "original.npy").astype(np.float64)
session = ort.InferenceSession(str(here / facts["artifact"]), providers=["CPUExecutionProvider"])
got = session.run(None, {{session.get_inputs()[0].name: x}})[0].astype(np.float64)
finite = np.isfinite(got)
err = np.where(finite, np.abs(got - original), np.inf).max(axis=1)
worst = int(err.argmax())
bound = facts["abs_max"]
print(f"{{facts['case']}}: onnxruntime {{ort.__version__}} (the run had "
      f"{{facts['versions'].get('onnxruntime')}}), samples {{facts['samples']}}")
if not err.max() <= bound:
    print(f"{{facts['case']}}: abs_max = {{err.max():.4g}} > {{bound:g}}, worst sample "
          f"{{facts['samples'][worst]}}")
    sys.exit(1)
print(f"{{facts['case']}}: abs_max = {{err.max():.4g}} <= {{bound:g}}: the failure does not "
      f"reproduce here")
'''


def write(run_dir: Path, case_id: str, artifact: Path, artifact_sha256: str,
          inputs: np.ndarray, original: np.ndarray, converted: np.ndarray, samples: list[int],
          abs_max: float, versions: dict, localisation: dict | None) -> Path:
    """The bundle of one failing case (written once: a second failing check of the same case
    finds it there)."""
    out = run_dir / BUNDLES / case_id
    if (out / "bundle.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    files = [artifact] if artifact.is_file() else sorted(p for p in artifact.rglob("*")
                                                        if p.is_file())
    for f in files:  # the .onnx and any external-data file beside it
        shutil.copy2(f, out / f.name)
    np.save(out / "inputs.npy", inputs)
    np.save(out / "original.npy", original)
    np.save(out / "converted.npy", converted)
    facts = {"case": case_id, "artifact": artifact.name if artifact.is_file() else files[0].name,
             "artifact_sha256": artifact_sha256, "artifact_source": str(artifact),
             "samples": samples, "abs_max": abs_max, "versions": versions,
             "localisation": localisation}
    (out / "bundle.json").write_text(json.dumps(facts, indent=1, default=str))
    (out / "reproduce.py").write_text(_SCRIPT.format(case=case_id))
    return out
