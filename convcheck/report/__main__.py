"""python -m convcheck.report RUN_DIR: rebuild the run's summary.md from its records."""
import sys
from pathlib import Path

from convcheck.report.tables import write_summary

print(write_summary(Path(sys.argv[1])).read_text())
