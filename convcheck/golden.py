"""python -m convcheck.golden DIR: replay golden data (saved by --convcheck-save-golden=DIR) on
this stack, without the original's framework and without retraining.

Each case's current artifact (by default the file the case was converted to, as this checkout's
cache now holds it; --artifact CASE=PATH names another) runs with onnxruntime on the saved
inputs; its outputs must stay within the case's abs_max (tolerances) of both the golden
conversion's and the original's saved outputs. Where they do not, the first operation of the
current graph that departs from the golden graph is named.

Exit status: 0 every case matches, 1 one differs, 2 bad input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convcheck.locate import golden
from convcheck.settings import ConfigError, load_tolerances, project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convcheck.golden",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("golden", type=Path, help="the directory --convcheck-save-golden wrote")
    parser.add_argument("--artifact", action="append", default=[], metavar="CASE=PATH",
                        help="replay this file for CASE instead of the one it was saved from")
    parser.add_argument("--tolerances", type=Path, default=None,
                        help="a tolerances file replacing the project's (abs_max, locate_rel)")
    args = parser.parse_args(argv)
    try:
        artifacts = {}
        for item in args.artifact:
            case, sep, path = item.partition("=")
            if not sep or not case or not path:
                raise golden.GoldenError(f"--artifact {item!r}: write CASE=PATH")
            artifacts[case] = Path(path)
        tol = load_tolerances(project.discover(Path.cwd()).files("tolerances", args.tolerances))

        def bound(facts):
            case = {k: facts.get(k) for k in ("model", "framework", "target", "profile")}
            return tol.lookup("abs_max", **case)[0]

        results = golden.replay(args.golden, bound, tol.lookup("locate_rel")[0], artifacts)
    except (golden.GoldenError, ConfigError, project.ProjectError, OSError) as e:
        print(f"convcheck.golden: {e}", file=sys.stderr)
        return 2
    for r in results:
        print(r.text())
    failed = [r for r in results if not r.passed]
    print(f"\n{len(results) - len(failed)} of {len(results)} case(s) match their golden data"
          + (f"; differing: {', '.join(r.case for r in failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
