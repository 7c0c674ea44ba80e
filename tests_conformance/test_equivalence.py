"""Does the converted model compute what the original computes, on the whole held-out set? (convcheck.suite.equivalence, run on the zoo)."""
from convcheck.suite.equivalence import *  # noqa: F401,F403
