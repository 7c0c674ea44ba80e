"""HTML pages a person reads at a glance: report.html for a run (failing cases first, the
study's tables, success rates original vs converted per attack as in the study's Figures 3 and
4, where each case's output errors sit against its tolerance, timings original vs converted)
and compare.html for a candidate run against its baseline.

Charts are drawn with matplotlib (Agg, no display) and embedded as PNG data, and the tables are
summary.md rendered by the markdown package, so a page is one self-contained file that any
browser opens without a JavaScript framework or a server.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from convcheck.checks.metrics import HIST_EDGES
from convcheck.report.records import RUN_INFO, SUMMARY, read_records
from convcheck.results import CHANGE_ORDER, UNCHANGED, Comparison

REPORT_HTML, COMPARE_HTML, COMPARE_MD = "report.html", "compare.html", "compare.md"
ATTACK_ORDER = ("fgsm", "boundary", "genetic")

_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1400px; color: #222 }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top }
th { background: #eee }
.fail, .regressed, .missing { background: #fdd }
.improved { background: #dfd }
.new { background: #ffd }
.pass { color: #185 }
img { max-width: 100%; border: 1px solid #ccc; margin: 0.5em 0 }
code, pre { font-size: 0.85em }
"""


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    """A figure as an <img> with its PNG inline."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/png;base64,{data}">'


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _table(header: list[str], rows: list[list], classes: list[str] | None = None) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                   + "</tr>")
    return "\n".join(out + ["</table>"])


# --------------------------------------------------------------------------- charts


def _label(r: dict, suffix: str = "") -> str:
    """A record's case id, with the stand-in runtime that ran it (coreml-reference off macOS):
    no figure of the MIL reference interpreter is shown as Core ML's."""
    case = r["case"].removesuffix(suffix)
    return f"{case} on {r['runtime']}" if r.get("runtime") else case


def success_rate_chart(records: list[dict]) -> str | None:
    """Figures 3 and 4: each attack's success rate on the original and on each conversion."""
    rows = [r for r in records if r.get("check") == "success_rate" and r.get("measured")]
    if not rows:
        return None
    attacks = [a for a in ATTACK_ORDER if any(r.get("attack") == a for r in rows)]
    attacks += sorted({r.get("attack") for r in rows} - set(attacks) - {None})
    plt = _plt()
    fig, axes = plt.subplots(len(attacks), 1, figsize=(10, 2.6 * len(attacks)), squeeze=False)
    for ax, attack in zip(axes[:, 0], attacks):
        rs = sorted((r for r in rows if r.get("attack") == attack), key=lambda r: r["case"])
        labels = [_label(r, f"-{attack}") for r in rs]
        x = range(len(rs))
        ax.bar([i - 0.2 for i in x], [r["measured"].get("success_rate_original", 0) for r in rs],
               0.4, label="original", color="#4878a8")
        ax.bar([i + 0.2 for i in x], [r["measured"].get("success_rate_converted", 0) for r in rs],
               0.4, label="converted", color="#e08040")
        ax.set_xticks(list(x), labels, rotation=30, ha="right", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("success rate")
        ax.set_title(f"{attack}: success rate, original vs converted")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def error_histograms(records: list[dict]) -> str | None:
    """Each conversion's samples by their largest abs error (per decade), and the abs_max bound."""
    rows = sorted((r for r in records if r.get("check") == "output_equivalence"
                   and (r.get("measured") or {}).get("abs_hist")), key=lambda r: r["case"])
    if not rows:
        return None
    plt = _plt()
    cols = min(4, len(rows))
    nrows = (len(rows) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.4 * nrows), squeeze=False)
    names = ["0"] + [f"1e{k}" for k in range(-9, 1)]
    for ax in axes.flat[len(rows):]:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows):
        counts = r["measured"]["abs_hist"]
        ax.bar(range(len(counts)), counts, color="#c04040" if not r.get("passed") else "#4878a8")
        bound = (r.get("tolerances") or {}).get("abs_max")
        if isinstance(bound, (int, float)) and 0 < bound < float("inf"):
            import bisect

            ax.axvline(bisect.bisect_right(HIST_EDGES, bound) - 0.5, color="k", ls="--", lw=1)
            ax.text(0.98, 0.9, f"abs_max bound {bound:g}", transform=ax.transAxes, ha="right",
                    fontsize=6)
        ax.set_xticks(range(len(counts)), names[:len(counts)], rotation=90, fontsize=5)
        ax.set_title(_label(r), fontsize=7)
        ax.tick_params(axis="y", labelsize=6)
    fig.suptitle("samples by their largest abs error (bins start at the value shown)",
                 fontsize=9)
    fig.tight_layout()
    return _png(fig)


def timing_chart(records: list[dict]) -> str | None:
    """Per conversion: the original's and the conversion's time per batch and per test set
    (medians of the interleaved pairs), log scale."""
    rows = sorted((r for r in records if r.get("check") == "speed_ratio"
                   and (r.get("measured") or {}).get("inference_batch_original_s")),
                  key=lambda r: r["case"])
    if not rows:
        return None
    plt = _plt()
    kinds = [k for k in ("inference_batch", "inference_testset", "load")
             if any(f"{k}_original_s" in r["measured"] for r in rows)]
    fig, axes = plt.subplots(len(kinds), 1, figsize=(10, 2.6 * len(kinds)), squeeze=False)
    for ax, k in zip(axes[:, 0], kinds):
        x = range(len(rows))
        ax.bar([i - 0.2 for i in x], [r["measured"].get(f"{k}_original_s", 0) for r in rows],
               0.4, label="original", color="#4878a8")
        ax.bar([i + 0.2 for i in x], [r["measured"].get(f"{k}_converted_s", 0) for r in rows],
               0.4, label="converted", color="#e08040")
        ax.set_yscale("log")
        ax.set_ylabel("seconds")
        ax.set_xticks(list(x), [r["case"] for r in rows], rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{k.replace('_', ' ')}: original vs converted (median of pairs)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


# --------------------------------------------------------------------------- run page


def _failing(records: list[dict]) -> list[list]:
    rows = []
    for r in records:
        if r.get("check") == "outcome":
            if r.get("outcome") in ("failed", "error"):
                rows.append([r.get("case"), r.get("test", "").rsplit("::", 1)[-1],
                             r.get("outcome"), (r.get("message") or "")[:600]])
        elif r.get("passed") is False:
            loc = r.get("localisation") or {}
            where = (f" | first diverging operation: {loc['op_type']} {loc['node']!r}"
                     if loc.get("node") else "")
            rows.append([_label(r), r.get("check"), "failed",
                         "; ".join(r.get("failures", []))[:600] + where])
    return rows


def run_page(run_dir: Path) -> Path:
    """report.html beside summary.md, from the run's records and summary."""
    import json

    import markdown

    records = read_records(run_dir)
    info_file = run_dir / RUN_INFO
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    body = [f"<h1>convcheck run {html.escape(str(info.get('run', run_dir.name)))}</h1>",
            f"<p>profile {html.escape(str(info.get('profile', '')))}, "
            f"{len(records)} records; versions: "
            + html.escape(", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items()))
            + "</p>"]
    failing = _failing(records)
    body.append(f"<h2>Failing ({len(failing)})</h2>")
    body.append(_table(["case", "check / test", "outcome", "message"], failing,
                       ["fail"] * len(failing)) if failing
                else '<p class="pass">no check failed.</p>')
    for title, chart in (("Success rates, original vs converted (Figures 3 and 4)",
                          success_rate_chart(records)),
                         ("Output errors against the tolerance", error_histograms(records)),
                         ("Timing, original vs converted", timing_chart(records))):
        if chart:
            body += [f"<h2>{title}</h2>", chart]
    summary = run_dir / SUMMARY
    if summary.is_file():
        body += ["<h2>Tables</h2>", markdown.markdown(summary.read_text(), extensions=["tables"])]
    path = run_dir / REPORT_HTML
    path.write_text(_page(f"convcheck run {info.get('run', run_dir.name)}", body))
    return path


# --------------------------------------------------------------------------- comparison


def comparison_chart(comparison: Comparison) -> str | None:
    """Error figures, baseline against candidate (log-log): on the diagonal nothing changed;
    above the dashed line a figure grew by more than the gate allows."""
    pts = [(ch.baseline, ch.candidate, ch.verdict) for ch in comparison.changes
           if ch.metric in ("abs_max", "abs_p99", "rel_max", "worst_abs_max", "worst_rel_max")
           and isinstance(ch.baseline, (int, float)) and isinstance(ch.candidate, (int, float))]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    floor = 1e-10
    colours = {"regressed": "#c04040", "improved": "#40a040"}
    for b, c, v in pts:
        ax.scatter(max(b, floor), max(c, floor), s=12, color=colours.get(v, "#4878a8"))
    growth = comparison.rules.get("gate_error_growth", 10)
    lo = floor
    hi = max(max(max(b, c) for b, c, _ in pts), 1e-6) * 10
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax.plot([lo, hi], [lo * growth, hi * growth], color="k", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("baseline")
    ax.set_ylabel("candidate")
    ax.set_title("error figures: baseline vs candidate (0 drawn at 1e-10)", fontsize=9)
    return _png(fig)


def comparison_markdown(comparison: Comparison) -> str:
    from convcheck.report.compare import text

    return "```\n" + text(comparison) + "\n```\n"


def write_comparison(comparison: Comparison, out: Path) -> list[Path]:
    """compare.md (the text report) and compare.html (tables and a chart) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    b, c = comparison.baseline, comparison.candidate
    names = sorted(b.versions.keys() | c.versions.keys())
    versions = _table(["library", "baseline", "candidate"],
                      [[n, b.versions.get(n, "-"), c.versions.get(n, "-")] for n in names],
                      ["new" if b.versions.get(n) != c.versions.get(n) else "" for n in names])
    verdict = ("PASS" if comparison.passed else
               f"FAIL: {len(comparison.regressions)} regression(s)")
    body = [f"<h1>Upgrade gate: {html.escape(verdict)}</h1>",
            f"<p>baseline {html.escape(b.path)} ({html.escape(b.run)}); candidate "
            f"{html.escape(c.path)} ({html.escape(c.run)})</p>", versions,
            _table(["verdict", "count"], [[v, n] for v, n in comparison.counts().items()])]
    if comparison.notes:
        body.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>"
                                     for n in dict.fromkeys(comparison.notes)) + "</ul>")
    rows, classes = [], []
    for v in CHANGE_ORDER:
        for ch in comparison.of(v):
            if v == UNCHANGED and ch.metric in ("passed", "outcome"):
                continue  # counted above; the figures that did not move stay listed
            r = ch.ratio
            rows.append([v, ch.case, ch.check, ch.metric, _fmt(ch.baseline), _fmt(ch.candidate),
                         f"x{r:.3g}" if r is not None else "", ch.why])
            classes.append(v)
    body.append(_table(["verdict", "case", "check", "metric", "baseline", "candidate", "change",
                        "why"], rows, classes))
    chart = comparison_chart(comparison)
    if chart:
        body += ["<h2>Error figures</h2>", chart]
    html_path, md_path = out / COMPARE_HTML, out / COMPARE_MD
    html_path.write_text(_page("convcheck upgrade gate", body))
    md_path.write_text(comparison_markdown(comparison))
    return [md_path, html_path]


def _fmt(x) -> str:
    if isinstance(x, float):
        return format(x, ".4g")
    return "-" if x is None else str(x)

