"""The conversion itself, on every OS: the converter ran and left a well-formed artifact. (convcheck.suite.conversion, run on the zoo)."""
from convcheck.suite.conversion import *  # noqa: F401,F403
