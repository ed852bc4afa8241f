#!/usr/bin/env bash
# README command 1: install everything, then reconstruct the sample capture (data/sample).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/photoforge run data/sample "$@"
