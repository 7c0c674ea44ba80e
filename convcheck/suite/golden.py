"""Does the current conversion still give what a conversion gave on an earlier stack?

--convcheck-golden=DIR replays the golden data --convcheck-save-golden=DIR saved (inputs, the
original's and the converted model's outputs, the artifact, the versions): per saved case, the
current conversion runs with onnxruntime on the saved inputs, and its outputs must stay within
the case's abs_max of both saved outputs. The current conversion is this run's own where the
run declares the case (converted on this stack from the cached original: a converter upgrade
is checked); else the file the case was saved from, or the golden artifact itself (a runtime
upgrade is checked, without the original's framework). Where the outputs part, the failure
names the first operation of the current graph that departs from the golden graph
(convcheck.locate.golden). Without the option, the test skips saying how to give it.
"""
from __future__ import annotations

import json
from pathlib import Path

from convcheck.locate import golden
from convcheck.pipeline.cases import Case
from convcheck.results import Verdict, fail

__all__ = ["test_golden_replay"]


def _current(bench, models, facts: dict, case_dir: Path) -> tuple[Path, str]:
    """The artifact to replay, and where it comes from."""
    model, framework, target = facts.get("model"), facts.get("framework"), facts.get("target")
    declared = (model in models and target in bench.targets and "seed" in facts
                and framework in bench.targets[target].frameworks())
    if declared:
        conv = bench.converted(model, framework, target, facts["seed"])
        if conv.path.is_file():
            return conv.path, "this run's conversion"
    source = Path(facts["artifact_source"])
    if source.is_file():
        return source, "the file the golden data was saved from (the case is not in this run)"
    return (case_dir / facts["artifact"],
            "the golden artifact itself (the case is not in this run, its source is gone): "
            "the runtime alone is checked")


def test_golden_replay(golden_case, bench, selected_models, tol, record_property):
    facts = json.loads((golden_case / golden.FACTS).read_text())
    artifact, why = _current(bench, selected_models, facts, golden_case)
    case = Case(facts["model"], facts["framework"], facts.get("seed"), facts["target"],
                format="onnx")
    lookup = tol(case)
    r = golden.replay_case(golden_case, lookup("abs_max")[0], lookup("locate_rel")[0], artifact)
    print(f"{r.case}: replayed {artifact}: {why}; golden versions: "
          + ", ".join(f"{k} {v}" for k, v in sorted(r.versions.items())))
    v = Verdict(r.case, "golden_replay", {"vs_golden": r.vs_golden,
                                          "vs_original": r.vs_original,
                                          "same_file": r.same_file})
    v.limit("abs_max_vs_golden", r.vs_golden, lookup, key="abs_max",
            where="the current conversion against the golden conversion's outputs")
    v.limit("abs_max_vs_original", r.vs_original, lookup, key="abs_max",
            where="against the golden original's outputs")
    record_property("golden_replay", v.measured)
    detail = ("where:\n" + r.localisation.text()) if r.localisation else ""
    fail(v, "\n".join(filter(None, [detail, *(f"note: {n}" for n in r.notes)])))
