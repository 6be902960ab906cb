#!/usr/bin/env bash
# Installs everything, then runs the whole test suite. Fails when no test ran (pytest exit 5).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh || exit 1
. .venv/bin/activate
mkdir -p test-artifacts
# The web-chat end-to-end tests drive Debian chromium (never a downloaded browser); CI runs as root.
if ! command -v chromium >/dev/null 2>&1; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; fi
python -m pytest -q "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$status"
