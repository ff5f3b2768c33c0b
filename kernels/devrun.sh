#!/usr/bin/env bash
# devrun.sh — one GPU-host session for the kernels: tests, compute-sanitizer
# on a short subset, benchmarks. Build first on the dev machine
# (`make gpu-bins`, see cuda.mk), carry bin/, then on the GPU host:
#
#   kernels/devrun.sh [tests|sanitize|errors|bench]...   (default: all four)
#
# Logs go to $OUT (or ./devrun-out); a summary is printed last.
set -u -o pipefail
out=${OUT:-devrun-out}
mkdir -p "$out"
bin=./bin/kernels.test
export HOME=${HOME:-/root}
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(tests sanitize errors bench)
summary=()

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader 2>&1 | tee "$out/smi.txt"

for s in "${steps[@]}"; do
	case $s in
	tests)
		timeout 560 $bin -test.v -test.timeout 550s 2>&1 | tee "$out/test.log" |
			grep -E '^(--- |PASS|FAIL|ok|panic)|gpu_test.go|device [0-9]|backend' | cut -c1-400
		summary+=("tests: rc=$?  $(grep -cE '^--- PASS|^    --- PASS' "$out/test.log") passed, $(grep -cE -- '--- FAIL' "$out/test.log") failed")
		;;
	sanitize)
		sub='TestGPUMatchesCPUSmall/.5_8_300_12_20./int|TestGPUTieBreaking|TestFP8PoolVariants|TestFP8RouterMatchesReference|TestFP8SelectMatchesReference/H=(64|8)/(prefill|decode)/k=128|TestFP8SelectFallback|TestFP8SelectPickPaths'
		for tool in memcheck racecheck synccheck initcheck; do
			run=$sub
			[ $tool = memcheck ] && run="$sub|TestLogitsVersionsAgree|TestFP8LogitsMatchReference/v12/H=(64|8)/(tile|single)_ldeven|TestTopKFastRows/normal_oddld"
			timeout 240 compute-sanitizer --tool $tool --error-exitcode 9 $bin -test.run "$run" -test.short >"$out/$tool.log" 2>&1
			summary+=("$tool: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/$tool.log" | tail -1)")
		done
		;;
	errors)
		MISABENCH_NVRTC=/nonexistent/libnvrtc.so timeout 60 $bin -test.run 'TestDevices' >"$out/errors.log" 2>&1
		summary+=("errors (bad MISABENCH_NVRTC): rc=$? $(grep -m1 -o 'kernels: cannot load NVRTC.*' "$out/errors.log" | cut -c1-160)")
		;;
	bench)
		timeout 200 $bin -test.run '^$' -test.bench . -test.benchtime 1x -test.timeout 190s 2>&1 | tee "$out/bench.log" |
			grep -E '^(Benchmark|ok|FAIL|panic)|bench_test' | cut -c1-300
		summary+=("bench: rc=$?")
		;;
	esac
done
echo "==== summary"
printf '%s\n' "${summary[@]}"
