#!/usr/bin/env bash
# Creates .venv and installs motcua with everything it needs, CPU-only. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first, pinned: on these machines 2.13.0 is a local CPU build; an unpinned torch pulled in by
# sentence-transformers would download a multi-GB CUDA build instead.
pip install -q "torch==2.13.0"
# bench: haystack-ai, the peer of benchmarks/peers.py, whose test keeps that comparison running.
pip install -q -e ".[test,bench]" ${EXTRA_PIP_ARGS:-}
