"""Does the converted model keep the original's adversarial robustness? (the study's RQ3) (convcheck.suite.robustness, run on the zoo)."""
from convcheck.suite.robustness import *  # noqa: F401,F403
