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

# Budgets in executions, not seconds: a duration -fuzztime races Go 1.26's
# fuzz coordinator at its deadline and can fail with "context deadline
# exceeded" and no failing input (go.dev/issue/75804, fixed in Go 1.27).
echo "== fuzz (safetensors header parser, through trace and directly; ~5s each)"
go test ./trace -run '^$' -fuzz FuzzParseHeader -fuzztime 150000x
go test ./safetensors -run '^$' -fuzz FuzzHeader -fuzztime 250000x

echo "== regression against results/baseline/ci.json"
go run ./cmd/misabench regress --config configs/ci.yaml --baseline results/baseline/ci.json
