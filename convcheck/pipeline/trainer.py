"""Training an original in a child process, ahead of the tests that need it.

On a cold run the test process trained each original when its first test asked for it, and
nothing else happened meanwhile: the ten trainings of the smoke zoo were 9 of a first run's
44 minutes, during which no test ran. Trained in a child instead, one after the other in the
order the tests need them (never two at once: each takes every core, and the thread count is
part of what makes its weights), the next model trains while the tests of the last one run,
and its conversions start as soon as it is trained (convcheck.pipeline.workbench).
The weights are the same: the child trains with the same code, seed, data and thread count
(tests/test_trainer.py compares them bit for bit), so the cache entry and its key are those
of a training in the test process.

The child is forked from the conversions' server (convcheck.conversion.runner): it starts with
the frameworks imported, is killed with the conversions when the session ends, and sends its
progress lines through a pipe, which the session writes from its own thread. Its stdout and
stderr (TensorFlow's chatter) go to a log, whose last lines an error shows when it crashes.

$CONVCHECK_TRAIN_AHEAD=0 trains in the test process, when first asked for, as before; inside a
pytest-xdist worker that is the default (each worker trains what its own tests need, and two
children training at once would each get a share of the cores).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Callable

import numpy as np

from convcheck import frameworks
from convcheck.conversion import runner
from convcheck.pipeline import priority, train

TRAIN_AHEAD_ENV = "CONVCHECK_TRAIN_AHEAD"
LOG_FILE = "training.log"


class TrainingError(Exception):
    pass


def train_ahead() -> bool:
    """Whether originals train in a child, ahead ($CONVCHECK_TRAIN_AHEAD: 1 or 0; default 1,
    0 in a pytest-xdist worker). Another value raises ValueError naming the variable."""
    value = os.environ.get(TRAIN_AHEAD_ENV)
    if value is None:
        return "PYTEST_XDIST_WORKER" not in os.environ
    if value.strip() not in ("0", "1"):
        raise ValueError(f"${TRAIN_AHEAD_ENV} = {value!r}: expected 1 (originals train in a "
                         "child process, ahead of their tests) or 0 (in the test process, when "
                         "first asked for)")
    return value.strip() == "1"


def train_in_child(spec, framework: str, x: np.ndarray, y: np.ndarray, hp, seed: int,
                   label: str, out_dir: Path, log: Callable[[str], None]) -> None:
    """Train as convcheck.pipeline.train.train does, in a child process, on `x` in the data's
    own layout (the child puts it in the framework's, as the test process does: the result's
    strides decide PyTorch's convolution path, e.g. an MNIST batch made NCHW by a transpose
    is channels-last in memory, and the weights differ from a copy's), and save the model
    into `out_dir` (train.save). The child's progress lines go to `log` as they come. Raises
    TrainingError with the child's own error, or its last lines where it was killed."""
    scratch = Path(tempfile.mkdtemp(prefix=".train-", dir=out_dir.parent))
    child = None
    try:
        # the training set by file: a pickle through the server's pipe would copy it twice
        np.save(scratch / "x.npy", x)
        np.save(scratch / "y.npy", y)
        reader, writer = runner.context().Pipe(duplex=False)
        job = {"model": spec.name, "spec": spec.declaration, "framework": framework,
               "hp": hp.as_dict(), "seed": seed, "label": label, "out_dir": str(out_dir),
               "scratch": str(scratch), **runner.child_context(),
               # what the entry's key says it trains on (--convcheck-device is no variable)
               "device": "cpu" if frameworks.device_of(framework) == "cpu" else "cuda",
               "compute": frameworks.compute(framework)}
        child = runner.start_child(_run, (job, writer), f"train {label}")
        # nice beside the tests, 0 while the session waits (convcheck.pipeline.priority):
        # priority only, the same threads and the same arithmetic
        priority.started(child.pid)
        writer.close()  # the child holds the only writer: its end is the pipe's end
        error = None
        while True:
            try:
                kind, text = reader.recv()
            except EOFError:
                break
            if kind == "log":
                log(text)
            else:
                error = text
        reader.close()
        child.join()
        if child.exitcode != 0:
            raise TrainingError(f"training {label} failed in its child process "
                                f"({runner.how_it_ended(child)}):\n"
                                f"{error or runner.last_words(scratch / LOG_FILE)}")
    finally:
        if child is not None:
            priority.ended(child.pid)
            runner.forget(child)
        shutil.rmtree(scratch, ignore_errors=True)


def _run(job: dict, conn) -> None:
    """The child: its output to the log; progress lines and its own error through `conn`."""
    scratch = Path(job["scratch"])
    fd = os.open(scratch / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(job.get("env", {}))
    try:
        from convcheck.children import enter_project
        from convcheck.declarations.spec import from_declaration
        from convcheck.settings import HyperParams

        frameworks.use_device(job["device"])
        if frameworks.compute(job["framework"]) != job["compute"]:  # the key would be wrong
            raise TrainingError(f"the child would train on {frameworks.compute(job['framework'])}"
                                f", the test process on {job['compute']}")
        enter_project(job)
        spec = from_declaration(job["model"], job["spec"])
        x = spec.to_framework_layout(np.load(scratch / "x.npy"), job["framework"])
        y = np.load(scratch / "y.npy")
        model = train.train(spec, job["framework"], x, y, HyperParams(**job["hp"]),
                            job["seed"], lambda line: conn.send(("log", line)), job["label"])
        train.save(model, job["framework"], Path(job["out_dir"]))
    except BaseException as e:  # the parent shows this, the training's own message
        conn.send(("error", "".join(traceback.format_exception(e)[-6:])))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(3)
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
