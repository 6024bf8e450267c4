#!/usr/bin/env bash
# Runs the perf harness with the given arguments, e.g. perf/run.sh gemm --quick, after installing
# what the suite compares against (Debian packages, as root or through sudo): libopenblas0 (the
# reference sgemm) if it is missing; for `perf/run.sh torch`, python3-torch and python3-numpy for
# /usr/bin/python3 instead (the PyTorch peer, perf/torch_step.py) if torch does not import.
set -euo pipefail
cd "$(dirname "$0")/.."
apt_install() {
    echo "installing $* (Debian)" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update && apt-get install -y "$@"
    else
        sudo apt-get update && sudo apt-get install -y "$@"
    fi
}
if [ "${1:-}" = torch ]; then
    if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        apt_install python3-torch python3-numpy
    fi
elif ! ldconfig -p | grep -q 'libopenblas\.so\.0'; then
    apt_install libopenblas0
fi
exec dotnet run -c Release --project perf -- "$@"
