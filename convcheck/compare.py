"""python -m convcheck.compare BASELINE CANDIDATE: gate an upgrade of the conversion tools.

BASELINE and CANDIDATE are run directories (reports/runs/<stamp>) or reports directories (their
newest run). Prints, per case and check, the baseline value, the candidate value, the change
and the verdict, with both version sets side by side; writes compare.md and compare.html (with
its charts) to --out (default: the candidate run's directory). The gate's rules are the
gate_* keys of the project's tolerances (convcheck.report.compare says what each means).

Exit status: 0 the candidate passes the gate, 1 a regression, 2 bad input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convcheck.report import compare as cmp
from convcheck.settings import ConfigError, load_tolerances, project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convcheck.compare",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path, help="the baseline's run or reports directory")
    parser.add_argument("candidate", type=Path, help="the candidate's run or reports directory")
    parser.add_argument("--tolerances", type=Path, default=None,
                        help="a tolerances file replacing the project's (gate_* keys)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where compare.md and compare.html go (default: the candidate run)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="a case the candidate did not run is listed, not a regression")
    parser.add_argument("--all", action="store_true", help="list unchanged figures too")
    args = parser.parse_args(argv)
    try:
        proj = project.discover(Path.cwd())
        tolerances = load_tolerances(proj.files("tolerances", args.tolerances))
        comparison = cmp.compare_runs(args.baseline, args.candidate, cmp.rules_from(tolerances),
                                      missing_is_regression=not args.allow_missing)
    except (cmp.CompareError, ConfigError, project.ProjectError, OSError) as e:
        print(f"convcheck.compare: {e}", file=sys.stderr)
        return 2
    from convcheck.report import pages

    out = args.out or Path(comparison.candidate.path)
    report = cmp.text(comparison, everything=args.all)
    print(report)
    written = pages.write_comparison(comparison, out)
    print(f"\nwritten: {', '.join(str(p) for p in written)}")
    return 0 if comparison.passed else 1


if __name__ == "__main__":
    sys.exit(main())
