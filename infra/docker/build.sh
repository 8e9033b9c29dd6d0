#!/usr/bin/env bash
# Build the PRIME image (infra/docker/Dockerfile) for this machine; `make image` runs it.
#   infra/docker/build.sh                      # -> prime-predictor:latest
#   IMAGE=prime-predictor:dev infra/docker/build.sh
# What it decides, each overridable:
# - BASE_IMAGE: python:3.11-slim if present or pullable, else the Debian-packages base that
#   infra/docker/build-base.sh makes (prime-base:bookworm), made here if missing.
# - the CPU torch wheel: TORCH_INDEX_URL (default https://download.pytorch.org/whl/cpu) if it
#   answers; else TORCH_WHEELS, a directory holding the torch +cpu wheel (default: the first
#   directory in pip's find-links that has one, as pip is set up on this host), served to the
#   build on 127.0.0.1:WHEELS_PORT (default 38211) for the build's duration.
# - pip's index: the host pip's index-url and http(s) extra-index-urls, passed as build args.
# - ZENML_VERSION: the ZenML of this checkout's .venv, so the steps write the store's schema.
# The build uses the host's network (--network host): the wheel server, and a proxy if any.
set -euo pipefail

cd "$(dirname "$0")/../.."   # the context: the repository root
IMAGE="${IMAGE:-prime-predictor:latest}"
HUB_BASE="python:3.11-slim"
LOCAL_BASE="${LOCAL_BASE:-prime-base:bookworm}"
TORCH="${TORCH:-torch==2.13.0}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
VENV_PY="${VENV_PY:-.venv/bin/python}"
HOST_PY="$(command -v python3)"
[ -x "${VENV_PY}" ] && HOST_PY="${VENV_PY}"
NICE="${NICE:-nice -n 10}"   # 2-core machines: the build must not starve everything else

answers() {  # does this URL answer (any HTTP status below 400) within 15 s?
  "${HOST_PY}" - "$1" << 'EOF'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=15)
except Exception:
    sys.exit(1)
EOF
}

pip_setting() {  # the host pip's value for a setting (env vars and config files), or nothing
  "${HOST_PY}" -m pip config list 2> /dev/null \
    | sed -n "s/^[^.]*\.$1='\(.*\)'\$/\1/p" | head -n 1 || true
}

build_args=()

# --- the base -----------------------------------------------------------------------------------
if [ -z "${BASE_IMAGE:-}" ]; then
  if docker image inspect "${HUB_BASE}" > /dev/null 2>&1 \
    || timeout 120 docker pull "${HUB_BASE}" > /dev/null 2>&1; then
    BASE_IMAGE="${HUB_BASE}"
  else
    echo "${HUB_BASE} cannot be pulled: using the local base ${LOCAL_BASE}"
    BASE_IMAGE="${LOCAL_BASE}" infra/docker/build-base.sh
    BASE_IMAGE="${LOCAL_BASE}"
  fi
fi
build_args+=(--build-arg "BASE_IMAGE=${BASE_IMAGE}")

# --- pip's index, as the host's pip has it --------------------------------------------------------
index_url="$(pip_setting index-url)"
case "${index_url}" in
  http://* | https://*) build_args+=(--build-arg "PIP_INDEX_URL=${index_url}") ;;
  *) index_url="" ;;
esac
extra=""
for url in $(pip_setting extra-index-url); do
  case "${url}" in http://* | https://*) extra="${extra:+${extra} }${url}" ;; esac
done
[ -n "${extra}" ] && build_args+=(--build-arg "PIP_EXTRA_INDEX_URL=${extra}")

# --- the CPU torch wheel ------------------------------------------------------------------------
server_pid=""
cleanup() { if [ -n "${server_pid}" ]; then kill "${server_pid}" 2> /dev/null || true; fi; }
trap cleanup EXIT
version="${TORCH#torch==}"
version="${version%%+*}"
if [ -z "${TORCH_WHEELS:-}" ] && ! answers "${TORCH_INDEX_URL%/}/torch/"; then
  for dir in $(pip_setting find-links); do
    dir="${dir#file://}"
    if compgen -G "${dir}/torch-${version}+cpu-*.whl" > /dev/null; then
      TORCH_WHEELS="${dir}"
      break
    fi
  done
  if [ -z "${TORCH_WHEELS:-}" ]; then
    echo "${TORCH_INDEX_URL} does not answer and no torch ${version}+cpu wheel is in pip's" \
      "find-links: set TORCH_INDEX_URL to a reachable CPU index or TORCH_WHEELS to a directory" >&2
    exit 2
  fi
fi
if [ -n "${TORCH_WHEELS:-}" ]; then
  # a fixed port: the URL is a build arg, and a new value would rebuild every layer after it
  port="${WHEELS_PORT:-38211}"
  if answers "http://127.0.0.1:${port}/"; then
    port="$("${HOST_PY}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    echo "port ${WHEELS_PORT:-38211} is taken: serving on ${port} (no layer cache this time)" >&2
  fi
  "${HOST_PY}" -m http.server "${port}" --bind 127.0.0.1 --directory "${TORCH_WHEELS}" \
    > /dev/null 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do answers "http://127.0.0.1:${port}/" && break; sleep 0.2; done
  echo "torch ${version}+cpu from ${TORCH_WHEELS} (served on 127.0.0.1:${port} for this build)"
  # the +cpu local version matches only that wheel; its own dependencies come from the index
  build_args+=(--build-arg "TORCH=torch==${version}+cpu"
    --build-arg "TORCH_INDEX_URL=${index_url:-https://pypi.org/simple}"
    --build-arg "PIP_FIND_LINKS=http://127.0.0.1:${port}/")
else
  build_args+=(--build-arg "TORCH=${TORCH}" --build-arg "TORCH_INDEX_URL=${TORCH_INDEX_URL}")
fi

# --- ZenML: the client's release ------------------------------------------------------------------
zenml_version="${ZENML_VERSION:-}"
if [ -z "${zenml_version}" ] && [ -x "${VENV_PY}" ]; then
  zenml_version="$("${VENV_PY}" -c 'import zenml; print(zenml.__version__)' 2> /dev/null || true)"
fi
[ -n "${zenml_version}" ] && build_args+=(--build-arg "ZENML_VERSION=${zenml_version}")
[ -n "${EXTRA_REQUIREMENTS:-}" ] && build_args+=(--build-arg "EXTRA_REQUIREMENTS=${EXTRA_REQUIREMENTS}")

echo "building ${IMAGE} on ${BASE_IMAGE}${zenml_version:+ (zenml ${zenml_version})}"
start=$(date +%s)
# shellcheck disable=SC2086  # NICE is a command prefix
${NICE} docker build --network host -f infra/docker/Dockerfile -t "${IMAGE}" \
  "${build_args[@]}" ${DOCKER_BUILD_FLAGS:-} .
size="$(docker image inspect --format '{{.Size}}' "${IMAGE}")"
echo "built ${IMAGE} in $(($(date +%s) - start)) s: $((size / 1000000)) MB"
