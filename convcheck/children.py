"""Starting convcheck's child processes (the converters' forks, the speed gate's timer)."""
from __future__ import annotations

import contextlib
import sys
import threading
import types

# hidden_main swaps a process-wide module: one thread at a time (a conversion may start from a
# background thread while the session's thread starts the speed gate's timer).
_main_lock = threading.RLock()


@contextlib.contextmanager
def hidden_main():
    """While a multiprocessing child is started: the child runs a function of a convcheck
    module and needs nothing of the parent's __main__ (pytest's script, or a team's own
    script), which multiprocessing would otherwise re-run in every child, unguarded code and
    all. A __main__ with neither __spec__ nor __file__ gives the child nothing to re-run."""
    with _main_lock:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


def parent_context() -> dict:
    """What a child needs to import the parent's project as the parent did: its sys.path and
    the root of the project whose settings it runs under (None: none). See enter_project."""
    from convcheck.settings.project import active

    project = active()
    return {"sys_path": [p for p in sys.path if p],
            "project": str(project.root) if project.configured else None}


def enter_project(context: dict) -> None:
    """In a child: the parent's sys.path, and the project's model modules imported as at the
    parent's start-up, so that a register_* call in them (an exporter, a runtime, a loader, a
    data set) is in force here too."""
    for p in reversed(context["sys_path"]):
        if p not in sys.path:
            sys.path.insert(0, p)
    if context.get("project"):
        from pathlib import Path

        from convcheck.settings.project import activate, discover, load_models

        project = discover(Path(context["project"]))
        activate(project)
        load_models(project)
