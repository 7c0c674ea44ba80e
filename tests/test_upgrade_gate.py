"""The upgrade gate as a user runs it: the suite in a subprocess (LeNet-5 -> onnx, both
frameworks; conversion, equivalence and robustness) makes a baseline run; the same suite then
runs as the candidate, gated against it (--convcheck-baseline), and python -m convcheck.compare
compares the two run directories.

- an identical candidate passes the gate;
- a candidate whose PyTorch conversion was replaced by a faulty one fails it, naming the case:
  one fault under every bound (abs_max at 0.9x its tolerance on 0.25 % of the outputs: every
  check passes, the gate alone catches the 15x growth), and one over (a weight scaled: the
  check fails, and the gate says it passed before).
The pages both write are then opened in a real headless browser (Debian's Chromium, driven by
Playwright): their tables and charts must have rendered, and a screenshot is kept.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from faulty_cache import cache_with_fault, run_suite

from convcheck.plugin import state
from convcheck.report.compare import run_dir
from convcheck.testing import faults

ROOT = Path(__file__).resolve().parent.parent
MODEL, TARGET = "lenet5", "onnx"
CASE = f"{MODEL}-pytorch-{TARGET}-s0"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def suite(bench, cache_dir: Path, reports: Path, *args: str) -> tuple[int, str]:
    return run_suite(bench, "tests_conformance/test_equivalence.py",
                     "tests_conformance/test_conversion.py", "tests_conformance/test_robustness.py",
                     "--convcheck-models", MODEL, "--convcheck-targets", TARGET,
                     f"--convcheck-cache-dir={cache_dir}", f"--convcheck-reports-dir={reports}",
                     "-p", "no:randomly", *args)


def compare_cli(*args) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "convcheck.compare", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def baseline(pytestconfig, tmp_path_factory):
    bench = state.bench(pytestconfig)
    if TARGET not in bench.targets:
        pytest.skip(f"target {TARGET} not selected (--convcheck-targets)")
    reports = tmp_path_factory.mktemp("baseline")
    rc, out = suite(bench, bench.cache_dir, reports)
    assert rc == 0, out
    return run_dir(reports)


def test_an_identical_candidate_passes(pytestconfig, baseline, tmp_path):
    bench = state.bench(pytestconfig)
    rc, out = suite(bench, bench.cache_dir, tmp_path, f"--convcheck-baseline={baseline}")
    assert rc == 0 and "convcheck gate: PASS" in out, out
    rc, out = compare_cli(baseline, run_dir(tmp_path), "--out", tmp_path / "cli")
    assert rc == 0 and "GATE: PASS" in out and "regressed" not in out, out
    # Nothing moved: the same cached conversions give the same figures, bit for bit.
    assert re.search(r"^\d+ unchanged$", out, flags=re.M), out


def _under_every_bound(bench, tolerances):
    """abs_max's tolerance x 0.9 added to the 0.25 % of outputs nearest 1 (as the fault
    battery's abs_max-0.9x control): under every bound, 15x the good conversion's abs_max."""
    good = bench.converted(MODEL, "pytorch", TARGET, bench.profile.seeds[0])
    outputs = bench.outputs(good)
    lo, hi, _ = faults.value_band(outputs, at_most=max(1, round(0.0025 * outputs.size)))
    add = 0.9 * tolerances.get("abs_max", model=MODEL, framework="pytorch", target=TARGET,
                               profile=bench.profile.name)
    return lambda src, dst: faults.perturb_output_band(src, dst, lo, hi, add=add)


def test_a_figure_that_grew_under_its_bound_fails_the_gate(pytestconfig, baseline, tmp_path):
    bench = state.bench(pytestconfig)
    cache_with_fault(bench, tmp_path, MODEL, TARGET,
                     _under_every_bound(bench, state.run(pytestconfig).tolerances))
    rc, out = suite(bench, tmp_path / "cache", tmp_path / "reports",
                    f"--convcheck-baseline={baseline}")
    # Every test passes; the session fails on the gate, naming the case and the figure.
    assert " failed" not in out.splitlines()[-1] and "convcheck gate: FAIL" in out, out
    assert rc == 1, out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("regressed:"))
    assert CASE in line and "abs_max" in line and "gate_error_growth" in line, out
    rc, cli = compare_cli(baseline, run_dir(tmp_path / "reports"))
    assert rc == 1 and "GATE: FAIL" in cli, cli
    row = next(ln for ln in cli.splitlines() if ln.startswith("regressed") and "abs_max" in ln)
    growth = float(re.search(r" x([\d.]+) ", row).group(1))
    assert CASE in row and 10 < growth < 25, row


def test_a_conversion_that_fails_now_fails_the_gate(pytestconfig, baseline, tmp_path):
    bench = state.bench(pytestconfig)
    cache_with_fault(bench, tmp_path, MODEL, TARGET,
                     lambda src, dst: faults.perturb_weight(src, dst, scale=0.5))
    rc, out = suite(bench, tmp_path / "cache", tmp_path / "reports",
                    f"--convcheck-baseline={baseline}")
    assert rc == 1 and "convcheck gate: FAIL" in out, out
    # One line for the case: a check that passed and fails now, and how many figures moved.
    assert re.search(rf"regressed: {re.escape(CASE)} \S+ passed: passed before, fails now: "
                     rf"{re.escape(CASE)}: .* \(\+\d+ more\)$", out, flags=re.M), out
    keras = CASE.replace("pytorch", "keras")
    assert not re.search(rf"regressed: {re.escape(keras)} ", out), out  # the other is untouched


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (Debian package chromium: "
                                             "apt-get install chromium; .ci/run installs it)")
def test_the_pages_render_in_a_browser(pytestconfig, baseline, tmp_path):
    """report.html of the baseline run and compare.html of a failing gate, opened in headless
    Chromium: every chart image decoded (naturalWidth > 0), the tables have rows, and a
    screenshot of each is kept in the reports directory."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    bench = state.bench(pytestconfig)
    cache_with_fault(bench, tmp_path, MODEL, TARGET,
                     lambda src, dst: faults.perturb_weight(src, dst, scale=0.5))
    rc, out = suite(bench, tmp_path / "cache", tmp_path / "reports",
                    f"--convcheck-baseline={baseline}")
    candidate = run_dir(tmp_path / "reports")
    shots = state.run(pytestconfig).reports_dir / "pages"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        for path, heading, charts in ((baseline / "report.html", "convcheck run", 2),
                                      (candidate / "compare.html", "Upgrade gate: FAIL", 1)):
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            assert heading in page.inner_text("h1"), path
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
            assert len(images) >= charts and all(c and w > 100 and h > 100
                                                  for c, w, h in images), (path, images)
            rows = page.eval_on_selector_all("table tr", "els => els.length")
            assert rows > 5, (path, rows)
            shot = shots / f"{path.stem}.png"
            page.screenshot(path=str(shot), full_page=True)
            pixels = np.asarray(Image.open(shot).convert("RGB"))
            colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
            assert pixels.shape[0] > 900 and colours > 50, (shot, pixels.shape, colours)
        text = page.inner_text("body")
        assert CASE in text and "regressed" in text, text[:2000]
        browser.close()
