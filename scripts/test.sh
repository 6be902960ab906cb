#!/usr/bin/env bash
# Installs everything, then runs the whole test suite. Fails when no test ran (pytest exit 5).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh || exit 1
. .venv/bin/activate
mkdir -p test-artifacts
# The web-chat end-to-end tests drive Debian chromium (never a downloaded browser); CI runs as root.
if ! command -v chromium >/dev/null 2>&1; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; fi
# One pytest worker per core (pytest-xdist), each module kept on one worker so its shared fixtures are built
# once; MOTCUA_TEST_WORKERS=0 runs everything in this process. Extra arguments go to pytest (-m "not e2e").
python -m pytest -q -n "${MOTCUA_TEST_WORKERS:-auto}" --dist loadfile "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$status"
