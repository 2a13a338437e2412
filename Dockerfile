# ganserve serving image: the BentoML service and the shipped models on ONNX Runtime; no torch, no training code.
# Runs on an NVIDIA GPU through the container toolkit (`--gpus all` or CDI) and falls back to the CPU elsewhere.
#   podman build --format docker -t ganserve .          (or: docker build -t ganserve .)
#   podman run --rm -p 3000:3000 ganserve
ARG BASE_IMAGE=python:3.11-slim

# Stage 1: the serving requirements, read from pyproject.toml. Only their text reaches the image, so editing
# pyproject.toml elsewhere (tool settings, training extras) keeps the dependency layers below cached.
FROM ${BASE_IMAGE} AS requirements
# onnxruntime-gpu extras: "cuda,cudnn" brings the CUDA 13 / cuDNN 9 libraries as wheels (2.1 GB installed).
# Empty gives a CPU-only image of the same code: 0.8 GB instead of 3.0 GB.
ARG ORT_EXTRAS=cuda,cudnn
COPY pyproject.toml scripts/serving_requirements.py /src/
RUN python3 /src/serving_requirements.py /src/pyproject.toml /requirements --ort-extras "${ORT_EXTRAS}"

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Largest and least often changed first: ONNX Runtime with the CUDA libraries. Its CUDA provider finds
# them through the loader cache (the wheels set no rpath); the container toolkit adds libcuda.so.1 at run time.
COPY --from=requirements /requirements/ort.txt /tmp/requirements/
RUN python3 -m venv /opt/venv \
 && pip install --no-cache-dir --progress-bar off -r /tmp/requirements/ort.txt \
 && find /opt/venv -path '*/site-packages/nvidia/*/lib' -type d > /etc/ld.so.conf.d/ganserve-nvidia.conf \
 && ldconfig

COPY --from=requirements /requirements/serve.txt /tmp/requirements/
RUN pip install --no-cache-dir --progress-bar off -r /tmp/requirements/serve.txt \
 && rm -rf /tmp/requirements

# A fixed numeric id, so that orchestrators can check runAsNonRoot. The code stays root-owned: read-only to it.
RUN groupadd --gid 10001 ganserve \
 && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin ganserve

WORKDIR /app
COPY models/ /app/models/
COPY gancore/ /app/gancore/
COPY service/ /app/service/

# Defaults of the service's settings; override with `-e NAME=value`.
ENV GANSERVE_MODELS_DIR=/app/models \
    GANSERVE_MAX_COUNT=256 \
    GANSERVE_THREADS=0 \
    BENTOML_HOST=0.0.0.0 \
    BENTOML_PORT=3000 \
    BENTOML_HOME=/tmp/bentoml \
    BENTOML_DO_NOT_TRACK=true

USER 10001:10001
EXPOSE 3000
# Ready means every model is loaded (`/readyz`); the models load in seconds, so allow a minute on slow hosts.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/readyz' % os.getenv('BENTOML_PORT', '3000'), timeout=4)"]
# Keep-alive longer than clients' and load balancers' idle timeouts (README, "Operating it").
CMD ["bentoml", "serve", "service.service:GanService", "--timeout-keep-alive", "75"]
