"""Starting convcheck's child processes (the converters' forks, the speed gate's timer)."""
from __future__ import annotations

import contextlib
import sys
import types


@contextlib.contextmanager
def hidden_main():
    """While a multiprocessing child is started: the child runs a function of a convcheck
    module and needs nothing of the parent's __main__ (pytest's script, or a team's own
    script), which multiprocessing would otherwise re-run in every child, unguarded code and
    all. A __main__ with neither __spec__ nor __file__ gives the child nothing to re-run."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main
