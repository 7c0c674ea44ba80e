"""The upgrade gate's rules (convcheck.report.compare), one at a time: each calls a change a
regression just over its gate_* bound and leaves it alone just under, on records shaped as the
suite writes them (a real run's figures: LeNet-5, PyTorch -> onnx, smoke)."""
from __future__ import annotations

import copy
import json

import pytest

from convcheck.report import compare
from convcheck.report.compare import compare_records
from convcheck.results import IMPROVED, MISSING, NEW, REGRESSED, UNCHANGED

CASE = {"case": "lenet5-pytorch-onnx-s0", "model": "lenet5", "framework": "pytorch",
        "target": "onnx", "attack": None, "seed": 0, "profile": "smoke"}
DATA = {"data": {"sha256": "7a621f173d3e", "dataset": "mnist"}}
EQUIV = CASE | DATA | {"check": "output_equivalence", "passed": True, "failures": [],
                       "measured": {"abs_max": 5.96e-07, "abs_p99": 2.09e-07, "rel_max": 6.57e-06,
                                    "n_samples": 1000}}
ACC = CASE | DATA | {"check": "accuracy_preserved", "passed": True, "failures": [],
                     "measured": {"accuracy_original": 0.95, "accuracy_converted": 0.95}}
AGREE = CASE | DATA | {"check": "label_disagreement", "passed": True, "failures": [],
                       "measured": {"label_disagreement": 0.0}}
SPEED = CASE | DATA | {"check": "speed_ratio", "passed": True, "failures": [],
                       "measured": {"inference_batch_ratio": 0.138,
                                    "inference_batch_ratio_low": 0.10,
                                    "inference_batch_ratio_high": 0.20}}
SIZE = CASE | DATA | {"check": "model_size", "passed": True, "failures": [],
                      "measured": {"size_ratio": 1.0444}}
OUTCOME = CASE | {"check": "outcome", "outcome": "passed", "passed": True, "message": "",
                  "test": "tests_conformance/test_conversion.py::"
                          "test_converts[lenet5-pytorch-onnx-s0]"}

RULES = {"gate_error_growth": 10, "gate_error_floor": 1e-6, "gate_accuracy_drop": 0.0,
         "gate_agreement_drop": 0.0, "gate_speed_growth": 1.5, "gate_size_growth": 1.05}


def rules(key, record):
    return RULES[key], "test"


def with_measured(record: dict, **figures) -> dict:
    r = copy.deepcopy(record)
    r["measured"].update(figures)
    return r


def verdicts(baseline: list[dict], candidate: list[dict], **kw) -> dict:
    c = compare_records(baseline, candidate, rules, **kw)
    return {(ch.check, ch.metric): ch.verdict for ch in c.changes}


def test_identical_runs_pass_with_everything_unchanged():
    records = [EQUIV, ACC, AGREE, SPEED, SIZE, OUTCOME]
    c = compare_records(records, copy.deepcopy(records), rules)
    assert c.passed and set(c.counts()) and c.counts()[UNCHANGED] == len(c.changes) > 0


@pytest.mark.parametrize("factor, verdict", [(9.9, UNCHANGED), (10.1, REGRESSED)])
def test_error_growth_is_judged_against_gate_error_growth(factor, verdict):
    base = with_measured(EQUIV, abs_max=2e-6)  # above the floor: growth alone decides
    cand = with_measured(EQUIV, abs_max=2e-6 * factor)
    assert verdicts([base], [cand])[("output_equivalence", "abs_max")] == verdict


@pytest.mark.parametrize("value, verdict", [(0.99e-6, UNCHANGED), (1.01e-6, REGRESSED)])
def test_growth_that_stays_under_the_floor_is_round_off(value, verdict):
    base = with_measured(EQUIV, abs_max=1e-9)  # x1000 either way: the floor decides
    cand = with_measured(EQUIV, abs_max=value)
    assert verdicts([base], [cand])[("output_equivalence", "abs_max")] == verdict


def test_an_error_that_shrank_tenfold_is_an_improvement():
    base = with_measured(EQUIV, abs_max=5e-5)
    assert verdicts([base], [EQUIV])[("output_equivalence", "abs_max")] == IMPROVED


def test_nan_where_there_was_a_number_is_a_regression():
    cand = with_measured(EQUIV, abs_max=float("nan"))
    assert verdicts([EQUIV], [cand])[("output_equivalence", "abs_max")] == REGRESSED


@pytest.mark.parametrize("drop, verdict", [(0.0, UNCHANGED), (0.001, REGRESSED)])
def test_any_accuracy_drop_over_gate_accuracy_drop(drop, verdict):
    cand = with_measured(ACC, accuracy_converted=0.95 - drop)
    assert verdicts([ACC], [cand])[("accuracy_preserved", "accuracy_converted")] == verdict


def test_accuracy_drop_bound_is_read_per_case():
    loose = dict(RULES, gate_accuracy_drop=0.002)
    cand = with_measured(ACC, accuracy_converted=0.949)
    c = compare_records([ACC], [cand], lambda k, r: (loose[k], "override"))
    assert c.passed


@pytest.mark.parametrize("rate, verdict", [(0.0, UNCHANGED), (0.001, REGRESSED)])
def test_label_agreement_lost(rate, verdict):
    cand = with_measured(AGREE, label_disagreement=rate)
    assert verdicts([AGREE], [cand])[("label_disagreement", "label_disagreement")] == verdict


@pytest.mark.parametrize("ratio, low, verdict", [
    (0.138 * 1.6, 0.19, UNCHANGED),   # 1.6x but the intervals overlap: noise
    (0.138 * 1.4, 0.21, UNCHANGED),   # apart, but only 1.4x
    (0.138 * 1.6, 0.21, REGRESSED),   # apart and over 1.5x
])
def test_speed_needs_both_apart_intervals_and_growth(ratio, low, verdict):
    cand = with_measured(SPEED, inference_batch_ratio=ratio, inference_batch_ratio_low=low,
                         inference_batch_ratio_high=ratio * 1.5)
    assert verdicts([SPEED], [cand])[("speed_ratio", "inference_batch_ratio")] == verdict


@pytest.mark.parametrize("growth, verdict", [(1.049, UNCHANGED), (1.051, REGRESSED)])
def test_size_growth(growth, verdict):
    cand = with_measured(SIZE, size_ratio=1.0444 * growth)
    assert verdicts([SIZE], [cand])[("model_size", "size_ratio")] == verdict


def test_a_check_that_passed_and_fails_now_is_a_regression_whatever_its_figures():
    cand = copy.deepcopy(EQUIV) | {"passed": False,
                                   "failures": ["lenet5-pytorch-onnx-s0: abs_max = 3e-4 > 1e-5"]}
    c = compare_records([EQUIV], [cand], rules)
    (reg,) = c.regressions
    assert reg.metric == "passed" and "abs_max = 3e-4 > 1e-5" in reg.why


def test_a_test_that_fails_now_is_a_regression_naming_the_test():
    cand = OUTCOME | {"outcome": "failed", "passed": False,
                      "message": "ConversionError: the exporter crashed"}
    c = compare_records([OUTCOME], [cand], rules)
    (reg,) = c.regressions
    assert "test_converts" in reg.why and "ConversionError" in reg.why


def test_missing_is_a_regression_unless_allowed_and_new_never_is():
    assert not compare_records([EQUIV, ACC], [EQUIV], rules).passed
    allowed = compare_records([EQUIV, ACC], [EQUIV], rules, missing_is_regression=False)
    assert allowed.passed and [ch.verdict for ch in allowed.of(MISSING)] == [MISSING]
    c = compare_records([EQUIV], [EQUIV, ACC], rules)
    assert c.passed and len(c.of(NEW)) == 1


def test_cases_narrow_the_baseline_to_what_the_candidate_collected():
    other = copy.deepcopy(EQUIV) | {"case": "lstm-pytorch-onnx-s0"}
    c = compare_records([EQUIV, other], [EQUIV], rules, cases={"lenet5-pytorch-onnx-s0"})
    assert c.passed and not c.of(MISSING)


def test_different_data_is_said():
    cand = copy.deepcopy(EQUIV)
    cand["data"]["sha256"] = "0123456789ab"
    c = compare_records([EQUIV], [cand], rules)
    assert any("different data" in n for n in c.notes)


def test_run_dir_takes_the_newest_run_of_a_reports_directory(tmp_path):
    for stamp in ("20260101-000000", "20260102-000000"):
        d = tmp_path / "runs" / stamp
        d.mkdir(parents=True)
        (d / "records.jsonl").write_text(json.dumps(EQUIV) + "\n")
    assert compare.run_dir(tmp_path).name == "20260102-000000"
    with pytest.raises(compare.CompareError, match="no records.jsonl"):
        compare.run_dir(tmp_path / "runs")


def test_text_shows_both_version_sets_and_the_verdict():
    c = compare_records([EQUIV], [with_measured(EQUIV, abs_max=1e-5)], rules)
    c.baseline.versions, c.candidate.versions = {"onnxruntime": "1.32.0"}, {"onnxruntime": "1.24.4"}
    out = compare.text(c)
    assert "onnxruntime" in out and "1.32.0" in out and "1.24.4" in out and "changed" in out
    assert "GATE: FAIL (1 regression(s))" in out and "x16.8" in out


def test_a_known_divergence_that_went_away_is_an_improvement_not_a_regression():
    base = OUTCOME | {"outcome": "xfailed", "message": "known: abs_max 0.18"}
    cand = OUTCOME | {"outcome": "failed", "passed": False,
                      "message": "[XPASS(strict)] known: the expected failure did not happen"}
    c = compare_records([base], [cand], rules)
    assert c.passed and [ch.verdict for ch in c.changes] == [IMPROVED], c.changes
