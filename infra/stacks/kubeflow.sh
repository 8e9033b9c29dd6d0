#!/usr/bin/env bash
# Register and activate `prime-kubeflow`: a ZenML stack that runs pipelines on Kubeflow Pipelines;
# schedules (configs/retraining_schedule.yaml) become KFP recurring runs. KFP reads a 6-field cron,
# seconds first: set cron_expression: "0 0 3 * * *" for 03:00.
#
# Needs: a deployed ZenML server (stacks with remote components refuse a local store):
#   zenml login https://zenml.example.com
# then, from the repository root, either the cluster's kubectl context (single-user KFP):
#   KUBE_CONTEXT=my-cluster REGISTRY_URI=ghcr.io/acme ARTIFACT_URI=s3://acme-ml/prime \
#     infra/stacks/kubeflow.sh
# or a multi-tenant Kubeflow's URL: KUBEFLOW_HOST=https://kubeflow.example.com (plus the two URIs).
# The steps run the project's one image: ZenML builds infra/docker/Dockerfile (the image of
# `make image` and of the local Docker stack) with the build args in configs/training_k8s.yaml,
# on this machine's Docker daemon, and pushes it to REGISTRY_URI/prime-predictor. The steps import
# the kfp client: set EXTRA_REQUIREMENTS there to
#   "kubernetes>=21.7,<26 kfp>=2.6.0 kfp-kubernetes>=1.1.0"
set -euo pipefail

: "${REGISTRY_URI:?set REGISTRY_URI to a registry the cluster pulls from, e.g. ghcr.io/acme}"
: "${ARTIFACT_URI:?set ARTIFACT_URI to the artifact bucket, e.g. s3://acme-ml/prime, gs://..., az://...}"
if [ -z "${KUBE_CONTEXT:-}" ] && [ -z "${KUBEFLOW_HOST:-}" ]; then
  echo "set KUBE_CONTEXT (kubectl context) or KUBEFLOW_HOST (multi-tenant Kubeflow URL)" >&2
  exit 2
fi
STACK="${STACK:-prime-kubeflow}"

case "${ARTIFACT_URI%%://*}" in
  s3) ARTIFACT_FLAVOR=s3 ;;
  gs) ARTIFACT_FLAVOR=gcp ;;
  az | abfs) ARTIFACT_FLAVOR=azure ;;
  *) echo "ARTIFACT_URI must start with s3://, gs:// or az://; got ${ARTIFACT_URI}" >&2; exit 2 ;;
esac

if [ -z "${SKIP_INSTALL:-}" ]; then  # the integrations' client packages, in this environment
  zenml integration install -y kubeflow "${ARTIFACT_FLAVOR}"
fi

if [ -n "${KUBEFLOW_HOST:-}" ]; then
  zenml orchestrator register "${STACK}-orchestrator" --flavor=kubeflow \
    --kubeflow_hostname="${KUBEFLOW_HOST}"
else
  zenml orchestrator register "${STACK}-orchestrator" --flavor=kubeflow \
    --kubernetes_context="${KUBE_CONTEXT}"
fi
zenml artifact-store register "${STACK}-artifacts" --flavor="${ARTIFACT_FLAVOR}" \
  --path="${ARTIFACT_URI}"
zenml container-registry register "${STACK}-registry" --flavor=default --uri="${REGISTRY_URI}"
zenml image-builder register "${STACK}-builder" --flavor=local
zenml stack register "${STACK}" -o "${STACK}-orchestrator" -a "${STACK}-artifacts" \
  -c "${STACK}-registry" -i "${STACK}-builder" --set
zenml stack describe "${STACK}"
