"""What is left of a run's long work (training, converting, attacking), for its progress lines.

The session plans, after collection, which cache entries its selected tests need and which are
not built yet; each build then says how many of its kind are left and about how long they take
at this run's mean so far. Kinds differ too much for one mean (a LeNet-5 trains in seconds, a
VGG-16 in minutes), so each kind has its own; the estimate is labelled as such.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


@dataclass
class Progress:
    todo: dict[str, set[str]] = field(default_factory=dict)  # kind -> entries still to build
    done: dict[str, list[float]] = field(default_factory=dict)  # kind -> seconds, planned builds
    spent: dict[str, dict[str, float]] = field(default_factory=dict)  # kind -> entry -> seconds
    # kind -> builds that run at once (conversions: convcheck.pipeline.ahead): the time left
    # is the mean's share of that many
    at_once: dict[str, int] = field(default_factory=dict)
    # kind -> [(start, end)] of each build, epoch seconds (comparable across pytest-xdist
    # workers): builds that overlap (conversions run ahead) count once in the wall time
    spans: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def expect(self, kind: str, names) -> None:
        self.todo.setdefault(kind, set()).update(names)

    def planned(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.todo.items() if v}

    def built(self, kind: str, name: str, seconds: float) -> str:
        """Record a build; the progress note for its line, e.g. '3 of 12 conversions built,
        9 to go: ~1 min at this run's mean of 9s'. '' when no plan covers it (a script)."""
        self.spent.setdefault(kind, {})[name] = seconds
        end = time.time()
        self.spans.setdefault(kind, []).append((end - seconds, end))
        todo = self.todo.get(kind)
        if todo is None or name not in todo:
            return ""
        todo.discard(name)
        done = self.done.setdefault(kind, [])
        done.append(seconds)
        left = len(todo)
        if not left:
            return f"{len(done)} of {len(done)} {kind} built"
        mean, at_once = sum(done) / len(done), self.at_once.get(kind, 1)
        return (f"{len(done)} of {len(done) + left} {kind} built, {left} to go: "
                f"~{duration(mean * left / at_once)} at this run's mean of {mean:.0f}s"
                + (f", {at_once} at a time" if at_once > 1 else ""))


def wall_seconds(spans) -> float:
    """Seconds of wall clock during which at least one of `spans` ((start, end) pairs) ran."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def wall_by_kind(spans: dict) -> dict[str, float]:
    """{kind: wall seconds of its builds, "all": of any build} from Progress.spans (merged)."""
    out = {kind: wall_seconds(s) for kind, s in spans.items()}
    out["all"] = wall_seconds([x for s in spans.values() for x in s])
    return out
