"""What a run leaves for a person to read: its records (records), the study's tables in
summary.md (tables), and the comparison of a candidate run with its baseline (compare).
``python -m convcheck.report RUN_DIR`` rebuilds a run's summary from its records."""
from convcheck.report.records import RECORDS, RUN_INFO, SUMMARY, Recorder, read_records
from convcheck.report.tables import summary, write_summary

__all__ = ["RECORDS", "RUN_INFO", "SUMMARY", "Recorder", "read_records", "summary", "write_summary"]
