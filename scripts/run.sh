#!/usr/bin/env bash
# Installs everything, then starts motcua on the embedded SQLite database with the bundled knowledge base.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. .venv/bin/activate
exec motcua serve "$@"
