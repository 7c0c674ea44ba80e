"""Does the current conversion still give what an earlier stack's did? (convcheck.suite.golden,
run on the zoo when --convcheck-golden=DIR names golden data; skipped, saying so, without it)."""
from convcheck.suite.golden import *  # noqa: F401,F403
