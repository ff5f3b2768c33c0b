#!/usr/bin/env bash
# The whole test suite, as CI runs it (README.md: "Test"). Needs only Go.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt: these files need formatting (run gofmt -w):" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test"
go test ./...

echo "== fuzz (safetensors header parser, through trace and directly; 5s each)"
go test ./trace -run '^$' -fuzz FuzzParseHeader -fuzztime 5s
go test ./safetensors -run '^$' -fuzz FuzzHeader -fuzztime 5s

echo "== regression against results/baseline/ci.json"
go run ./cmd/misabench regress --config configs/ci.yaml --baseline results/baseline/ci.json
