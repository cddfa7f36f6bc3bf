# fluxgate — common tasks. `make run` and `make test` are all a newcomer needs.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.Version=$(VERSION)
IMAGE     ?= fluxgate:$(VERSION)

.PHONY: run test test-short generate lint verify build docker bench crds cluster-build

## run: serve on the embedded defaults (SQLite, in-memory bus, local cluster, development auth)
run:
	$(GO) run ./cmd/fluxgate serve

## test: every test with the race detector (PostgreSQL/Redis/cluster suites run when configured)
test:
	$(GO) test -race -count=1 -timeout 45m ./...

## test-short: quick unit tests only
test-short:
	$(GO) test -short ./...

## generate: regenerate graph/ from schema.graphqls
generate:
	$(GO) generate ./...

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^graph/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## verify: fail when generated code or go.mod/go.sum are stale
verify: generate
	$(GO) mod tidy
	@git diff --exit-code -- graph go.mod go.sum || (echo "generated code or go.mod is stale: run 'make generate' and 'go mod tidy' and commit"; exit 1)
	@test -z "$$(git status --porcelain -- graph)" || (git status --porcelain -- graph; echo "graph/ has untracked generated files"; exit 1)

## build: a static binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/fluxgate ./cmd/fluxgate

## docker: build the container image
docker:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

## bench: benchmarks that print figures
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

## crds: regenerate the Flux CRDs in config/crd/bases with controller-gen (takes minutes)
crds:
	tools/crdgen/generate.sh

## cluster-build: build and cache the local cluster's binaries (first run of `make run` does it too)
cluster-build:
	$(GO) run ./cmd/fluxgate cluster build
