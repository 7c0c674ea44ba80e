"""python -m convcheck.report RUN_DIR: rebuild the run's summary.md from its records.
python -m convcheck.report merge RUN_DIR... --into DIR: join runs made in parts (shards) into
one run directory, with its summary and report page."""
import argparse
import sys
from pathlib import Path

from convcheck.report.tables import write_summary

if len(sys.argv) > 1 and sys.argv[1] == "merge":
    from convcheck.report import pages
    from convcheck.report.merge import MergeError, merge

    parser = argparse.ArgumentParser(prog="python -m convcheck.report merge",
                                     description="join run directories made in parts (shards)")
    parser.add_argument("parts", nargs="+", type=Path, help="the parts' run directories")
    parser.add_argument("--into", type=Path, required=True, help="the new run directory")
    args = parser.parse_args(sys.argv[2:])
    try:
        path = merge(args.parts, args.into)
    except MergeError as e:
        sys.exit(f"convcheck.report merge: {e}")
    pages.run_page(args.into)
    print(path.read_text())
    print(f"merged {len(args.parts)} runs into {args.into}")
else:
    print(write_summary(Path(sys.argv[1])).read_text())
