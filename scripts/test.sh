#!/usr/bin/env bash
# README command 2: install everything, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# Blender too (optional): tests/test_blender_import.py opens the GLBs in its glTF importer
PHOTOFORGE_APT_EXTRA="${PHOTOFORGE_APT_EXTRA-blender python3-numpy}" bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
