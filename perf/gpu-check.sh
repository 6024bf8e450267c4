#!/usr/bin/env bash
# The device check of the GPU path, one script for the short time a GPU machine is lent
# (../shared/ENGINE-NOTES.md, the device tool). Prepare it here:
#   ../shared/tools/gpu-bundle src/Cli/ZeroFL.Cli.csproj      # packs the CLI and .NET into .gpu/
# then run it there with carry [".gpu"] and command "bash perf/gpu-check.sh cuda"; the results land
# in $OUT (the GPU, the device list, one JSON line per profile, the host syncs traced).
# Here it runs on the OpenCL compatibility mode to check the script itself:
#   RUSTICL_ENABLE=llvmpipe OUT=/tmp/gpu-check bash perf/gpu-check.sh opencl cnn
# Arguments: DEVICE (cuda, opencl, cpu; default cuda) and MODELS (default "resnet18 cnn").
set -uo pipefail
device=${1:-cuda}
models=${2:-resnet18 cnn}
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
run() { bash .gpu/run "$@"; }
[[ -x .gpu/run ]] || { echo "gpu-check: .gpu/run missing; run ../shared/tools/gpu-bundle src/Cli/ZeroFL.Cli.csproj first" >&2; exit 1; }

{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null || true; } | tee "$out/gpu.txt"
run devices | tee "$out/devices.txt"
status=0
for model in $models; do
    for sparsity in 0.9 0.95; do
        # Dense and SWAT steps at batch 32, host syncs and bytes read back per step.
        timeout 300 bash .gpu/run profile --model "$model" --sparsity "$sparsity" --batch 32 --device "$device" --json \
            > "$out/profile-$model-$sparsity.json" 2> "$out/profile-$model-$sparsity.err" || status=1
        head -c 600 "$out/profile-$model-$sparsity.json"; echo
    done
    # Where a step still waits, if it does (none expected with the top-K period 1).
    ZEROFL_TRACE_SYNCS=1 timeout 300 bash .gpu/run profile --model "$model" --batch 32 --steps 1 --device "$device" --json \
        > /dev/null 2> "$out/syncs-$model.txt" || status=1
    echo "$model: $(grep -c 'host sync at' "$out/syncs-$model.txt") syncs traced over the whole profile run (warm-up and per-layer timing included)"
done
exit $status
