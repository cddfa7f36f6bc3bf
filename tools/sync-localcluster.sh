#!/bin/sh
# Copies the tool modules (kube, flux, kwok) into localcluster/toolsrc as
# data files (".txt" suffix) so that the fluxgate binary can embed them and
# build the local cluster binaries outside this repository. go:embed cannot
# reach into a nested module, hence the copy. Run after changing tools/*.
set -eu
cd "$(dirname "$0")"
dst=../localcluster/toolsrc
rm -rf "$dst/kube" "$dst/flux" "$dst/kwok"
for mod in kube flux kwok; do
	find "$mod" -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) | while read -r f; do
		mkdir -p "$dst/$(dirname "$f")"
		cp "$f" "$dst/$f.txt"
	done
done
