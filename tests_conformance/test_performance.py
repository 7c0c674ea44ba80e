"""Load time, inference time (Table III) and size on disk (Table IV), original vs converted. (convcheck.suite.performance, run on the zoo)."""
from convcheck.suite.performance import *  # noqa: F401,F403
