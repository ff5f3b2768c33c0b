# misabench — see README.md. Needs only Go (CUDA builds: a later target).
GO      ?= go
BIN     ?= bin/misabench
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build test lint fmt fuzz bench regress update-baseline clean

all: build

include cuda.mk

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/misabench

# The README's test command: gofmt, vet, tests, a short fuzz run, regression.
test:
	./scripts/test.sh

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck ./...; \
	else echo "staticcheck not installed; skipped (go install honnef.co/go/tools/cmd/staticcheck@latest)"; fi

fmt:
	gofmt -w .

fuzz:
	$(GO) test ./trace -run XXX -fuzz FuzzParseHeader -fuzztime 30s

bench:
	$(GO) test ./... -run '^$$' -bench . -benchmem

regress:
	$(GO) run ./cmd/misabench regress --config configs/ci.yaml --baseline results/baseline/ci.json

update-baseline:
	$(GO) run ./cmd/misabench regress --config configs/ci.yaml --baseline results/baseline/ci.json --update

# GPU builds (build-cuda, cuda-sdk, gpu-bins) come with the CUDA backend:
# see DESIGN.md §5. `misabench --device gpu` says so until then.

clean:
	rm -rf bin build
