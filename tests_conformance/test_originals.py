"""Sanity of the trained originals: later equivalence checks never run on untrained models. (convcheck.suite.originals, run on the zoo)."""
from convcheck.suite.originals import *  # noqa: F401,F403
