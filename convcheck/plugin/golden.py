"""--convcheck-save-golden=DIR: at the end of the session, golden data for every ONNX conversion
whose outputs the session compared (convcheck.locate.golden.save); python -m convcheck.golden
DIR replays them on a later stack."""
from __future__ import annotations

import pytest

from convcheck.pipeline.cache import file_sha256
from convcheck.plugin.state import bench as bench_of
from convcheck.plugin.state import run

SAVED = pytest.StashKey[object]()  # (count, directory) or the error text


def pytest_sessionfinish(session):
    config = session.config
    root = run(config).save_golden
    if root is None:
        return
    from convcheck.locate import golden

    bench = bench_of(config)
    saved = 0
    try:
        for conv in bench.compared():
            if conv.target.format != "onnx" or not conv.path.is_file():
                continue
            o = conv.original
            x, _ = bench.test_set(o.spec, o.framework)
            c = conv.case
            meta = {"model": c.model, "framework": c.framework, "target": c.target,
                    "seed": c.seed, "profile": bench.profile.name,
                    "data": bench.dataset(o.spec).provenance.as_dict()}
            golden.save(root, conv.id, conv.path, file_sha256(conv.path), x, bench.outputs(o),
                        bench.outputs(conv), bench.versions, meta)
            saved += 1
    except (OSError, golden.GoldenError) as e:
        config.stash[SAVED] = f"golden data not saved: {e}"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    config.stash[SAVED] = (saved, root)


def pytest_terminal_summary(terminalreporter, config):
    result = config.stash.get(SAVED, None)
    if isinstance(result, str):
        terminalreporter.write_line(f"convcheck: {result}", red=True)
    elif result is not None:
        terminalreporter.write_line(f"convcheck: golden data of {result[0]} conversion(s) in "
                                    f"{result[1]} (python -m convcheck.golden {result[1]})")
