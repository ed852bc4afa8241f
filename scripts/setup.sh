#!/usr/bin/env bash
# Set up a fresh Debian machine for photoforge: system packages, a virtualenv in .venv, the package.
# Idempotent and quick when nothing changed (a stamp records the installed pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# open3d needs libusb at import; pycolmap/opencv use OpenMP; chromium renders report.html in a test
APT_PACKAGES=(libusb-1.0-0 libgomp1 chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
"$PYTHON" -m venv --help >/dev/null 2>&1 && "$PYTHON" -c "import ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install these system packages: ${missing[*]}" >&2
  fi
fi

# Optional packages a caller asks for (scripts/test.sh: Blender, to check the GLBs in its glTF importer):
# best effort, a test that needs one skips without it.
if [ -n "${PHOTOFORGE_APT_EXTRA:-}" ] && command -v apt-get >/dev/null 2>&1; then
  extra=()
  for pkg in ${PHOTOFORGE_APT_EXTRA}; do dpkg -s "$pkg" >/dev/null 2>&1 || extra+=("$pkg"); done
  if [ ${#extra[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing optional packages: ${extra[*]}"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${extra[@]}" >/dev/null; } || echo "setup: could not install ${extra[*]}: the tests that need them skip"
  fi
fi

# Node tools (glTF-Validator, gltfpack, three.js, Spark, esbuild): node from Debian if missing, the packages
# from the npm registry, and the report's viewer bundled (tools/viewer/dist/viewer.js), again whenever
# tools/package.json, its lock or the viewer's source changed (a stamp in node_modules records them).
if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
node_stamp=tools/node_modules/.photoforge-installed
node_inputs=(tools/package.json tools/package-lock.json tools/viewer/viewer.js tools/viewer/licenses.mjs)
if command -v npm >/dev/null 2>&1 && ! { cat "${node_inputs[@]}" | cmp -s - "$node_stamp" && [ -f tools/viewer/dist/viewer.js ]; }; then
  echo "setup: installing the node tools in tools/node_modules and bundling the report's viewer"
  (cd tools && { npm ci --silent --no-audit --no-fund 2>/dev/null || npm install --silent --no-audit --no-fund; })
  # the viewer is optional: without its bundle the report says so where the viewer would be
  if (cd tools && npm run --silent build-viewer); then
    cat "${node_inputs[@]}" >"$node_stamp"
  else
    echo "setup: could not bundle the report's 3D viewer (tools/viewer): reports will have none" >&2
  fi
fi

stamp=.venv/.photoforge-installed
if [ -f "$stamp" ] && cmp -s pyproject.toml "$stamp"; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: an open range would pull the newest CUDA build (several GB). Here 2.13.0 is
# the CPU wheel; on a GPU machine install your CUDA torch beforehand (or set PHOTOFORGE_TORCH).
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q "${PHOTOFORGE_TORCH:-torch==2.13.0}"
fi
.venv/bin/python -m pip install -q -e ".[dev]"
cp pyproject.toml "$stamp"
echo "setup: photoforge installed in .venv ($(.venv/bin/photoforge --help >/dev/null && echo ok))"
