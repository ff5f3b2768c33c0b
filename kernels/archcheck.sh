#!/usr/bin/env bash
# archcheck.sh — compile the kernel module (common.cuh, then every .cu in
# name order, as NVRTC sees it) for older architectures with a local nvcc,
# to check that kernels needing a newer one compile to a trap there instead
# of breaking the module (common.cuh: ON_SM89, ON_SM90A).
#
#   kernels/archcheck.sh [nvcc] [arch...]   (default: nvcc on PATH; sm_70 sm_75 sm_80)
#
# A CUDA 11.8 nvcc cannot assemble the sm_89/sm_90a FP8 instructions, so
# those targets are left to NVRTC on the GPU host (kernels/devrun.sh).
set -u
nvcc=${1:-nvcc}
shift || true
archs=("$@")
[ ${#archs[@]} -eq 0 ] && archs=(sm_70 sm_75 sm_80)
dir=$(cd "$(dirname "$0")" && pwd)
src=$(mktemp --suffix .cu)
trap 'rm -f "$src" "$src.cubin"' EXIT
cat "$dir/common.cuh" $(ls "$dir"/*.cu | sort) >"$src"
rc=0
for a in "${archs[@]}"; do
	if "$nvcc" -arch="$a" -cubin -o "$src.cubin" "$src" >/dev/null 2>"$src.err"; then
		echo "$a: ok"
	else
		echo "$a: FAILED"; grep -m5 error "$src.err"; rc=1
	fi
	rm -f "$src.err"
done
exit $rc
