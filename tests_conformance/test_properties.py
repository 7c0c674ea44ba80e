"""Does the converted model agree with its original on *any* valid input, not just the test set? (convcheck.suite.properties, run on the zoo)."""
from convcheck.suite.properties import *  # noqa: F401,F403
