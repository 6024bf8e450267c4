#!/usr/bin/env bash
# Runs the kernel benchmarks against OpenBLAS: installs libopenblas0 (Debian) if it is missing,
# then runs the harness with the given arguments, e.g. perf/run.sh gemm --quick
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ldconfig -p | grep -q 'libopenblas\.so\.0'; then
    echo "installing libopenblas0 (OpenBLAS, the reference sgemm)" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update && apt-get install -y libopenblas0
    else
        sudo apt-get update && sudo apt-get install -y libopenblas0
    fi
fi
exec dotnet run -c Release --project perf -- "$@"
