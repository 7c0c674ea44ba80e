"""The conformance tests, one module per property family. A project collects all of them with
one test module::

    # test_convcheck.py
    from convcheck.suite import *  # noqa: F401,F403

or one family per module (``from convcheck.suite.equivalence import *``). The fixtures they take
come from the convcheck plugin; nothing here runs anything at import.
"""
from convcheck.suite.conversion import *  # noqa: F401,F403
from convcheck.suite.equivalence import *  # noqa: F401,F403
from convcheck.suite.golden import *  # noqa: F401,F403
from convcheck.suite.originals import *  # noqa: F401,F403
from convcheck.suite.performance import *  # noqa: F401,F403
from convcheck.suite.properties import *  # noqa: F401,F403
from convcheck.suite.robustness import *  # noqa: F401,F403
