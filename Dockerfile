# photoforge GPU image: CUDA torch, pycolmap-cuda12 (PatchMatch stereo), gsplat with its CUDA
# kernels compiled at build time. Runs `photoforge run`, or a Prefect worker for the GPU pool:
#   docker build -t photoforge-gpu .
#   docker run --gpus all -v $PWD/capture:/data -v $PWD/workspace:/workspace photoforge-gpu \
#       run /data --workspace /workspace --preset hero
#   docker run --gpus all -e PREFECT_API_URL=http://SERVER:4200/api -v /shared:/shared \
#       --entrypoint prefect photoforge-gpu worker start --pool photoforge-gpu --limit 1
# (deploy with `photoforge deploy --gpu-root /app ...` so GPU runs start in this image's checkout)
# Without a CUDA base image (or a GPU): Dockerfile.cpu, the same install and checks on Debian.
# The build ends with scripts/image_check.py: node >= 18 runs the glTF-Validator on a GLB, open3d,
# pymeshlab (its filter plugins too) and pycolmap import, pip check, pycolmap has CUDA.

# node: Ubuntu 22.04's nodejs is 12, too old for the validator's top-level await (>= 14.8). The
# official node image's binary (nodejs.org's build, glibc >= 2.28) runs on Ubuntu 22.04; pin it
# by digest with --build-arg NODE_IMAGE=node:22-bookworm-slim@sha256:... for a reproducible build.
ARG NODE_IMAGE=node:22-bookworm-slim
FROM ${NODE_IMAGE} AS node
WORKDIR /tools
COPY tools/package.json tools/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04

ARG TORCH_VERSION=2.5.1
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu124
ARG GSPLAT_VERSION=1.5.3
# the GPU generations gsplat's kernels are compiled for (V100, A100, A10/3090, L4/4090, H100)
ARG TORCH_CUDA_ARCH_LIST="7.0;8.0;8.6;8.9;9.0"
# parallel nvcc jobs of the gsplat build (each takes GBs of RAM)
ARG MAX_JOBS=4

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST} MAX_JOBS=${MAX_JOBS}
# shared libraries the wheels load (checked with readelf): open3d libusb, libEGL (at import);
# pycolmap-cuda12 libSM, libICE, libX11, libXext; pymeshlab's filter plugins libOpenGL; opencv libGL, glib
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3.11 python3.11-dev python3.11-venv python3-pip git ninja-build ca-certificates \
        libusb-1.0-0 libgomp1 libgl1 libglib2.0-0 libegl1 libopengl0 libsm6 libice6 libx11-6 libxext6 \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN node -e 'const v = process.versions.node; console.log("node", v); process.exit(+v.split(".")[0] >= 18 ? 0 : 1)'

# torch with CUDA first, so nothing below swaps it for another build
RUN pip install --upgrade pip wheel setuptools \
    && pip install "torch==${TORCH_VERSION}" --index-url ${TORCH_INDEX}
# gsplat from source: setup.py compiles the CUDA extension now, not at first use
RUN pip install --no-build-isolation "git+https://github.com/nerfstudio-project/gsplat.git@v${GSPLAT_VERSION}" \
    && python -c "from gsplat import csrc; print('gsplat kernels', csrc.__file__)"

WORKDIR /app
COPY pyproject.toml README.md pipelines.yaml prefect.yaml ./
COPY src ./src
COPY flows ./flows
COPY tasks ./tasks
COPY tools/package.json tools/package-lock.json tools/validate_gltf.mjs ./tools/
COPY --from=node /tools/node_modules ./tools/node_modules
COPY scripts/image_check.py ./scripts/
# photoforge, then pycolmap's CUDA build in place of the CPU wheel (same module name, same version;
# photoforge's cache keys treat the two as one library). No pip install may follow: it would bring
# the CPU wheel back.
RUN pip install -e . \
    && PYCOLMAP_VERSION=$(python -c "import importlib.metadata as m; print(m.version('pycolmap'))") \
    && pip uninstall -y pycolmap \
    && pip install "pycolmap-cuda12==${PYCOLMAP_VERSION}" \
    && python -c "import pycolmap; assert pycolmap.has_cuda, 'pycolmap without CUDA'; print(pycolmap.__version__)"
# everything the stages load, run for real; pip check knows pycolmap-cuda12 stands in for pycolmap
RUN python scripts/image_check.py --pip-check --allow-missing pycolmap --cuda

ENTRYPOINT ["photoforge"]
CMD ["--help"]
