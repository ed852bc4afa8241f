# photoforge GPU image: CUDA torch, pycolmap-cuda12 (PatchMatch stereo), gsplat with its CUDA
# kernels compiled at build time. Runs `photoforge run`, or a Prefect worker for the GPU pool:
#   docker build -t photoforge-gpu .
#   docker run --gpus all -v $PWD/capture:/data -v $PWD/workspace:/workspace photoforge-gpu \
#       run /data --workspace /workspace --preset hero
#   docker run --gpus all -e PREFECT_API_URL=http://SERVER:4200/api -v /shared:/shared \
#       --entrypoint prefect photoforge-gpu worker start --pool photoforge-gpu --limit 1
# (deploy with `photoforge deploy --gpu-root /app ...` so GPU runs start in this image's checkout)
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
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3.11 python3.11-dev python3.11-venv python3-pip git ninja-build \
        libusb-1.0-0 libgomp1 libgl1 libglib2.0-0 nodejs npm ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

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
RUN cd tools && npm ci --omit=dev --no-audit --no-fund
# photoforge, then pycolmap's CUDA build in place of the CPU wheel (same module name, same version;
# photoforge's cache keys treat the two as one library). No pip install may follow: it would bring
# the CPU wheel back.
RUN pip install -e . \
    && PYCOLMAP_VERSION=$(python -c "import importlib.metadata as m; print(m.version('pycolmap'))") \
    && pip uninstall -y pycolmap \
    && pip install "pycolmap-cuda12==${PYCOLMAP_VERSION}" \
    && python -c "import pycolmap; assert pycolmap.has_cuda, 'pycolmap without CUDA'; print(pycolmap.__version__)"

ENTRYPOINT ["photoforge"]
CMD ["--help"]
