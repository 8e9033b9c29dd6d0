#!/usr/bin/env bash
# Register and activate `prime-k8s`: a ZenML stack whose steps run as Kubernetes pods and whose
# schedules (configs/retraining_schedule.yaml) become Kubernetes CronJobs.
#
# Needs: a deployed ZenML server (stacks with remote components refuse a local store):
#   zenml login https://zenml.example.com
# then, from the repository root:
#   KUBE_CONTEXT=my-cluster REGISTRY_URI=ghcr.io/acme ARTIFACT_URI=s3://acme-ml/prime \
#     infra/stacks/kubernetes.sh
# and run: zenml pipeline run pipelines.training_pipeline -c configs/training_k8s.yaml
# The step pods run the project's one image: ZenML builds infra/docker/Dockerfile (the image of
# `make image` and of the local Docker stack, infra/stacks/local_docker.sh) with the build args in
# configs/training_k8s.yaml (the kubernetes client added), with IMAGE_BUILDER, and pushes it to
# REGISTRY_URI/prime-predictor. Try the image locally first: `make image test-docker`.
# No registry to pull python:3.11-slim from (local builder): `make base-image` and set
# BASE_IMAGE: prime-base:bookworm in those build args.
set -euo pipefail

: "${KUBE_CONTEXT:?set KUBE_CONTEXT to the kubectl context of the cluster (kubectl config get-contexts)}"
: "${REGISTRY_URI:?set REGISTRY_URI to a registry the cluster pulls from, e.g. ghcr.io/acme}"
: "${ARTIFACT_URI:?set ARTIFACT_URI to the artifact bucket, e.g. s3://acme-ml/prime, gs://..., az://...}"
STACK="${STACK:-prime-k8s}"
NAMESPACE="${NAMESPACE:-zenml}"            # the step pods' namespace (kubectl create namespace ...)
IMAGE_BUILDER="${IMAGE_BUILDER:-local}"    # local: the Docker daemon here; kaniko: in the cluster

case "${ARTIFACT_URI%%://*}" in
  s3) ARTIFACT_FLAVOR=s3 ;;
  gs) ARTIFACT_FLAVOR=gcp ;;
  az | abfs) ARTIFACT_FLAVOR=azure ;;
  *) echo "ARTIFACT_URI must start with s3://, gs:// or az://; got ${ARTIFACT_URI}" >&2; exit 2 ;;
esac

if [ -z "${SKIP_INSTALL:-}" ]; then  # the integrations' client packages, in this environment
  zenml integration install -y kubernetes "${ARTIFACT_FLAVOR}"
fi

zenml orchestrator register "${STACK}-orchestrator" --flavor=kubernetes \
  --kubernetes_context="${KUBE_CONTEXT}" --kubernetes_namespace="${NAMESPACE}"
zenml artifact-store register "${STACK}-artifacts" --flavor="${ARTIFACT_FLAVOR}" \
  --path="${ARTIFACT_URI}"
zenml container-registry register "${STACK}-registry" --flavor=default --uri="${REGISTRY_URI}"
if [ "${IMAGE_BUILDER}" = kaniko ]; then
  zenml image-builder register "${STACK}-builder" --flavor=kaniko \
    --kubernetes_context="${KUBE_CONTEXT}" --kubernetes_namespace="${NAMESPACE}"
else
  zenml image-builder register "${STACK}-builder" --flavor=local
fi
zenml stack register "${STACK}" -o "${STACK}-orchestrator" -a "${STACK}-artifacts" \
  -c "${STACK}-registry" -i "${STACK}-builder" --set
zenml stack describe "${STACK}"
