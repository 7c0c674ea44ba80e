"""The checks: each compares what an original and its conversion measured (convcheck.checks.metrics,
convcheck.checks.paired_timing) against the case's tolerances and returns a convcheck.results.Verdict
(convcheck.checks.verdicts). Pure numpy: no framework, no pytest."""
from convcheck.checks.verdicts import *  # noqa: F401,F403
from convcheck.checks.verdicts import Lookup  # noqa: F401
