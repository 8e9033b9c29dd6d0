#!/usr/bin/env bash
# Register `prime-docker`: a ZenML stack whose steps run one by one, each in its own container of
# the PRIME image, on this machine's Docker daemon (ZenML's local_docker orchestrator), with the
# local artifact store. No ZenML server needed: the containers reach the local SQLite store and
# artifact store through a bind mount of ZenML's local stores directory (same path inside).
#
# From the repository root, after `make image`:
#   infra/stacks/local_docker.sh           # SET=1 also makes it the active stack
#   zenml pipeline run pipelines.training_pipeline -c configs/smoke_docker.yaml -s prime-docker
# Idempotent: components and the stack that exist are kept as they are.
#
# The steps run as the image's non-root user (uid 1000, configs/smoke_docker.yaml's run_args),
# not as the caller (ZenML's default, root on a root shell). Unless the caller is uid 1000, the
# local stores directory is made writable for uid 1000 with an ACL (package `acl`): ownership and
# the mode bits stay as they are, the directories' default ACL covers what is created later, and
# the caller keeps full access to what the steps create.
set -euo pipefail

ZENML="${ZENML:-zenml}"
PYTHON="${PYTHON:-$(dirname "$(command -v "${ZENML}")")/python}"
STACK="${STACK:-prime-docker}"
CONTAINER_UID="${CONTAINER_UID:-1000}"   # the image's user `prime` (infra/docker/Dockerfile)

docker info > /dev/null || { echo "no Docker daemon answers (docker info)" >&2; exit 2; }

have() { "${ZENML}" "$1" describe "$2" > /dev/null 2>&1; }

have orchestrator "${STACK}-orchestrator" \
  || "${ZENML}" orchestrator register "${STACK}-orchestrator" --flavor=local_docker
# the orchestrator validates that the stack has one; configs/smoke_docker.yaml builds nothing
have image-builder "${STACK}-builder" \
  || "${ZENML}" image-builder register "${STACK}-builder" --flavor=local
if ! have stack "${STACK}"; then
  # `default`: the local artifact store every ZenML store has, under the local stores directory
  "${ZENML}" stack register "${STACK}" -o "${STACK}-orchestrator" -a default -i "${STACK}-builder"
fi
if [ -n "${SET:-}" ]; then
  "${ZENML}" stack set "${STACK}"
fi

stores="$("${PYTHON}" -c \
  'from zenml.config.global_config import GlobalConfiguration as G; print(G().local_stores_path)')"
if [ "$(id -u)" != "${CONTAINER_UID}" ]; then
  if ! command -v setfacl > /dev/null; then
    echo "uid ${CONTAINER_UID} (the steps' user) needs write access to ${stores}:" \
      "apt-get install acl, then run this again" >&2
    exit 2
  fi
  # and the caller keeps full access to what the steps create (they own it: uid 1000)
  setfacl -R -m "u:${CONTAINER_UID}:rwX" -m "d:u:${CONTAINER_UID}:rwX" \
    -m "d:u:$(id -u):rwX" "${stores}"
  echo "uid ${CONTAINER_UID} may write ${stores} (an ACL; undo:" \
    "setfacl -R -x u:${CONTAINER_UID} -x d:u:${CONTAINER_UID} ${stores})"
fi
"${ZENML}" stack describe "${STACK}"
