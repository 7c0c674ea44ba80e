from convcheck.suite.regressions import *  # noqa: F401,F403
