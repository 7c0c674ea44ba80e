"""TimedLast: pytest-xdist's loadgroup scheduling, with one group held back to run last, alone.

Written here because xdist has no such mode: its schedulers spread work as soon as a worker is
free, and a test that times a model beside another worker's training measures that training
too. This keeps LoadGroupScheduling as it is and changes only when the held group is handed
out: never while another group is queued or any worker has tests pending; then to the worker
that finished last, and every other worker is shut down. A shut-down worker still runs the one
test it held back; the timed tests wait for it under an exclusive lock (plugin.workers, `alone`),
so they run on a machine with no other test on it, on as many threads as a serial run's.
"""
from __future__ import annotations

from xdist.scheduler.loadgroup import LoadGroupScheduling


class TimedLast(LoadGroupScheduling):
    def __init__(self, config, log, held: str, groups):
        """held: the group to run last, alone; groups() -> {node id: group}, what the workers
        collected (read once, when scheduling starts: every worker has collected by then)."""
        super().__init__(config, log)
        self.held, self._read_groups, self._groups = held, groups, None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:
            self._groups = self._read_groups()
        return self._groups.get(nodeid, nodeid)

    def _busy(self) -> bool:
        # A worker holds its last test back until it gets more work or is shut down (pytest
        # runs an item knowing the next): one pending test is a worker that is done.
        return any(self._pending_of(work) > 1 for work in self.assigned_work.values())

    def _assign_work_unit(self, node) -> None:
        if next(iter(self.workqueue)) == self.held:
            if len(self.workqueue) > 1:  # other groups first
                self.workqueue.move_to_end(self.held)
            elif self._busy():
                return  # the held group waits for every worker to finish
            else:
                for other in self.nodes:
                    if other is not node and not other.shutting_down:
                        other.shutdown()
        super()._assign_work_unit(node)

    def _reschedule(self, node) -> None:
        if (not node.shutting_down and list(self.workqueue) == [self.held]
                and not self._busy()):
            self._assign_work_unit(node)  # the last worker to finish runs the held group
            return
        super()._reschedule(node)
