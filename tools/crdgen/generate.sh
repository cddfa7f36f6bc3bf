#!/bin/sh
# Regenerates the Flux CRDs in config/crd/bases with controller-gen (pinned
# in this module's go.mod) over the Flux API modules (pinned there too).
set -eu
cd "$(dirname "$0")"
out=../../config/crd/bases
rm -rf "$out"
mkdir -p "$out"
GOWORK=off GOFLAGS=-mod=mod go tool controller-gen crd:crdVersions=v1 \
	paths=github.com/fluxcd/source-controller/api/... \
	paths=github.com/fluxcd/kustomize-controller/api/... \
	paths=github.com/fluxcd/helm-controller/api/... \
	paths=github.com/fluxcd/notification-controller/api/... \
	paths=github.com/fluxcd/image-reflector-controller/api/... \
	output:crd:artifacts:config="$out"
