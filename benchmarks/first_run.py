"""A first run measured as issue 28 asks: a command (default ``./run.sh``) in a fresh clone, its
wall time and exit code, the memory of its whole process tree, and where the time went.

    git clone -q . /tmp/first && python3 benchmarks/first_run.py /tmp/first
    python3 benchmarks/first_run.py /tmp/first -- ./run.sh -m "not slow"   # another command

Memory: every SAMPLE_S seconds the proportional set size (PSS) of every process under the
command is summed: the test process, the converting children forked from their server, the
speed gate's timing process. PSS, not RSS: forked children share the server's pages, and summed
RSS counts those once per child. Read from /proc/<pid>/smaps_rollup (Linux, the machine these
figures come from): psutil would give the same number but is not in the pinned stack, and one
file per process is all this needs. `/usr/bin/time -v` reports the largest single process only.

Cores: the machine's busy time (/proc/stat, all processes: run it on a quiet machine) over each
interval, written to <clone>/first_run.cpu.json and summed up as the cores' mean use and the
share of the wall time a core stood idle (under half the cores busy beyond one): what running
more at once could still fill.

Where the time went: the newest run directory's run.json (`built`: seconds per training,
conversion and attack), pytest's own duration from its last line, the rest of the wall time
being set-up (the install, pytest's start). Standard library only: it runs before the venv.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

SAMPLE_S = 5.0


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:  # the parent is the 2nd field after the command's closing parenthesis
                stat = Path(f"/proc/{pid}/stat").read_text()
                kids.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(pid))
            except (OSError, IndexError, ValueError):  # gone meanwhile
                pass
    return kids


def tree_pss(root: int) -> tuple[int, list[tuple[int, str]]]:
    """(bytes of PSS summed over `root` and its descendants, [(pss, command)] largest first)."""
    kids, todo, found = _children(), [root], []
    while todo:
        pid = todo.pop()
        todo += kids.get(pid, [])
        try:
            fields = dict(line.split(":", 1) for line in
                          Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
            cmd = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()
            found.append((int(fields["Pss"].split()[0]) * 1024, cmd[:70]))
        except (OSError, KeyError, ValueError):
            pass
    found.sort(reverse=True)
    return sum(p for p, _ in found), found


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the machine, all cores summed (/proc/stat's first line)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def phases(reports: Path) -> tuple[dict[str, tuple[int, float, float]], float | None]:
    """({kind: (count, seconds summed, wall seconds)}, wall seconds of all builds) from the
    newest run directory's run.json. Builds may overlap (conversions run ahead, two at a
    time): their sum exceeds their wall time, and the tests ran beside them."""
    runs = sorted((reports / "runs").glob("*/run.json"))
    info = json.loads(runs[-1].read_text()) if runs else {}
    built, wall = info.get("built", {}), info.get("built_wall", {})
    kinds = {kind: (len(entries), sum(entries.values()), wall.get(kind, float("nan")))
             for kind, entries in built.items()}
    return kinds, wall.get("all")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clone", type=Path, help="the fresh clone to run in")
    ap.add_argument("--log", type=Path, help="its output (default <clone>/first_run.log)")
    argv = sys.argv[1:]
    command = argv[argv.index("--") + 1:] if "--" in argv else ["./run.sh"]
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.command = command
    log = args.log or args.clone / "first_run.log"
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(args.command, cwd=args.clone, stdout=out,
                                stderr=subprocess.STDOUT)
        peak: list = [0, []]
        cores, busy = os.cpu_count() or 1, []  # [(seconds since start, cores busy)]

        def sample() -> None:
            last = cpu_times()
            while proc.poll() is None:
                total, top = tree_pss(proc.pid)
                if total > peak[0]:
                    peak[:] = [total, top[:3]]
                time.sleep(SAMPLE_S)
                now = cpu_times()
                if now[1] > last[1]:
                    busy.append((round(time.perf_counter() - t0, 1),
                                 round(cores * (now[0] - last[0]) / (now[1] - last[1]), 3)))
                last = now

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        sampler.join()
    wall = time.perf_counter() - t0
    text = log.read_text(errors="replace")
    # pytest's last line: "=== 3 failed, 1569 passed, ... in 3282.63s (0:54:42) ===" (-q: bare)
    last = re.findall(r"^=*\s*(\d+ (?:passed|failed|skipped|error|xfailed)[^\n]*?) in "
                      r"([0-9.]+)s", text, re.M)
    pytest_s = float(last[-1][1]) if last else float("nan")
    print(f"{' '.join(args.command)} in {args.clone}: exit {code}, wall {wall:.0f} s "
          f"({wall / 60:.1f} min); pytest {pytest_s:.0f} s: {last[-1][0] if last else '?'}")
    print(f"peak memory {peak[0] / 1e9:.2f} GB (PSS of the process tree, sampled every "
          f"{SAMPLE_S:g} s): " + "; ".join(f"{p / 1e9:.2f} GB {c}" for p, c in peak[1]))
    if busy:
        (args.clone / "first_run.cpu.json").write_text(json.dumps(
            {"cores": cores, "sample_s": SAMPLE_S, "busy": busy}))
        mean = sum(b for _, b in busy) / len(busy)
        idle = sum(1 for _, b in busy if b < cores - 0.5) / len(busy)
        print(f"cores busy {mean:.2f} of {cores} on average; under {cores - 0.5:g} busy "
              f"{idle:.0%} of the wall time (first_run.cpu.json: each {SAMPLE_S:g} s)")
    kinds, built_wall = phases(args.clone / "reports")
    built = built_wall if built_wall is not None else sum(s for _, s, _ in kinds.values())
    print(f"set-up {wall - pytest_s:.0f} s, " + ", ".join(
        f"{kind} {n} in {s:.0f} s ({w:.0f} s of wall clock)" for kind, (n, s, w) in kinds.items())
        + f", tests alone {pytest_s - built:.0f} s (pytest's time while nothing was built)")
    return code


if __name__ == "__main__":
    sys.exit(main())
