"""Golden data: what a conversion produced on the stack of one run, kept to check a later stack
against it without retraining and without the original's framework.

save() writes, per case, <dir>/<case>/: the inputs, the original's and the converted model's
outputs on them (golden.npz), the artifact itself, and golden.json (the library versions, the
artifact's checksum, where it came from). replay() runs the current artifact (by default the
file the case was converted to, as this checkout's cache now holds it) with onnxruntime on the
saved inputs and compares its outputs with both saved ones; where they part, it names the first
operation of the current graph that departs from the golden graph (the golden graph's tensors,
in order, matched to the current graph's by value: convcheck.locate's walk, with the golden
artifact in the original's place).
"""
from __future__ import annotations

import filecmp
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convcheck.locate import _walk, graph, relative
from convcheck.results import Localisation

FACTS, ARRAYS = "golden.json", "golden.npz"


class GoldenError(Exception):
    """A golden directory that cannot be read or replayed."""


def save(root: Path, case_id: str, artifact: Path, artifact_sha256: str, x: np.ndarray,
         original: np.ndarray, converted: np.ndarray, versions: dict, meta: dict) -> Path:
    out = root / case_id
    out.mkdir(parents=True, exist_ok=True)
    if not artifact.is_file():
        raise GoldenError(f"{case_id}: {artifact} is not one ONNX file (only those are kept)")
    shutil.copy2(artifact, out / artifact.name)
    np.savez_compressed(out / ARRAYS, x=x, original=original, converted=converted)
    facts = {"case": case_id, "artifact": artifact.name, "artifact_source": str(artifact),
             "artifact_sha256": artifact_sha256, "versions": versions} | meta
    (out / FACTS).write_text(json.dumps(facts, indent=1, default=str))
    return out


@dataclass
class Replay:
    case: str
    artifact: str
    versions: dict  # the golden run's
    vs_golden: float  # abs_max of the current outputs against the golden converted outputs
    vs_original: float  # abs_max against the golden original outputs
    bound: float
    same_file: bool  # the artifact is byte for byte the golden one
    localisation: Localisation | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.vs_golden <= self.bound and self.vs_original <= self.bound

    def text(self) -> str:
        verdict = "matches" if self.passed else "DIFFERS"
        lines = [f"{self.case}: {verdict}: abs_max {self.vs_golden:.4g} against the golden "
                 f"conversion's outputs, {self.vs_original:.4g} against the original's (bound "
                 f"{self.bound:g}); artifact {self.artifact}"
                 + (" (the golden file, unchanged)" if self.same_file else "")]
        if self.localisation is not None and self.localisation.node:
            lines += ["  " + line for line in self.localisation.text().splitlines()
                      if not line.startswith("onnxruntime")]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _abs_max(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float(np.nan_to_num(d, nan=np.inf).max()) if d.size else 0.0


def _run(model, x: np.ndarray) -> dict:
    """Every tensor onnxruntime computes (the graph's outputs first among them)."""
    g = graph.Graph(model)
    feeds = {g.inputs[0]: x}
    ref = graph.reference_values(model, feeds)
    return graph.runtime_values(model, feeds, {k: v.dtype for k, v in ref.items()
                                               if isinstance(v, np.ndarray)})


def replay_case(case_dir: Path, bound: float, locate_rel: float,
                artifact: Path | None = None) -> Replay:
    import onnx

    facts_file = case_dir / FACTS
    if not facts_file.is_file():
        raise GoldenError(f"{case_dir}: no {FACTS} (not a golden case directory)")
    facts = json.loads(facts_file.read_text())
    current = Path(artifact or facts["artifact_source"])
    if not current.is_file():
        raise GoldenError(f"{facts['case']}: the current artifact {current} does not exist "
                          "(convert it again, or name one with --artifact CASE=PATH)")
    with np.load(case_dir / ARRAYS) as z:
        x, original, converted = z["x"], z["original"], z["converted"]
    golden_model = onnx.load(str(case_dir / facts["artifact"]))
    model = onnx.load(str(current))
    g = graph.Graph(model)
    values = _run(model, x)
    out = values[g.outputs[0]]
    r = Replay(facts["case"], str(current), facts.get("versions", {}),
               _abs_max(converted, out), _abs_max(original, out), bound,
               filecmp.cmp(current, case_dir / facts["artifact"], shallow=False))
    if not r.passed:
        import time

        t0 = time.perf_counter()
        # The 4 samples the current artifact gets most wrong, as a failing check localises.
        err = np.nan_to_num(np.abs(out.astype(np.float64) - converted), nan=np.inf).max(axis=1)
        worst = sorted(int(i) for i in np.argsort(-err, kind="stable")[:4])
        x = x[worst]
        values = _run(model, x)
        golden_g = graph.Graph(golden_model)
        golden_values = _run(golden_model, x)
        layers = [(name, golden_values[name]) for node in golden_g.nodes for name in node.outputs
                  if isinstance(golden_values.get(name), np.ndarray)
                  and golden_values[name].dtype.kind == "f" and golden_values[name].ndim >= 1
                  and golden_values[name].shape[0] == len(x)]
        loc = Localisation(facts["case"], worst, bound=locate_rel, against="golden graph")
        _walk(loc, g, values, layers[:-1], golden_values[golden_g.outputs[0]], set())
        loc.seconds = time.perf_counter() - t0
        r.localisation = loc
        if relative(converted[worst], golden_values[golden_g.outputs[0]]) > locate_rel:
            r.notes.append("the golden artifact itself no longer gives the golden outputs on "
                           "this onnxruntime: the runtime changed too")
    return r


def replay(root: Path, bound_for, locate_rel: float,
           artifacts: dict[str, Path] | None = None) -> list[Replay]:
    """Every case under `root` (bound_for(case_facts) -> abs_max bound)."""
    cases = sorted(p.parent for p in Path(root).glob(f"*/{FACTS}"))
    if not cases:
        raise GoldenError(f"{root}: no golden case ({FACTS} under a case directory): save "
                          "some with --convcheck-save-golden=DIR")
    unknown = set(artifacts or {}) - {p.name for p in cases}
    if unknown:
        raise GoldenError(f"--artifact names no golden case: {', '.join(sorted(unknown))}; "
                          f"cases: {', '.join(p.name for p in cases)}")
    out = []
    for case_dir in cases:
        facts = json.loads((case_dir / FACTS).read_text())
        out.append(replay_case(case_dir, bound_for(facts), locate_rel,
                               (artifacts or {}).get(case_dir.name)))
    return out
