#!/usr/bin/env bash
# The main job (./zerofl run defaults: Fashion-MNIST, small CNN, 100 clients, 10 per round) in
# process, on one silo (--silos 1) and on three (--silos 3), alternated REPS times in one run so that
# a change in the machine's load moves all three. Per run: wall seconds, the mean round seconds
# (metrics.csv, evaluation rounds included), start-up (wall minus the rounds) and the bytes through
# the coordinator per round; then per variant the median round time and its overhead against the
# in-process run. Every run must end with the same model.safetensors (checked). One JSON object per
# line on stdout.
# usage: perf/cluster-bench.sh [ROUNDS (default 30)] [REPS (default 2)]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-30}"
reps="${2:-2}"
out="$(mktemp -d /tmp/zerofl-cluster-bench.XXXXXX)"
variants=(single silos-1 silos-3)
./zerofl devices >/dev/null # builds the CLI first, outside the timings
declare -A round_times
for rep in $(seq 1 "$reps"); do
    for variant in "${variants[@]}"; do
        dir="$out/$variant-$rep"
        extra=()
        case "$variant" in
            silos-1) extra=(--silos 1) ;;
            silos-3) extra=(--silos 3) ;;
        esac
        start=$(date +%s.%N)
        ./zerofl run --device cpu --quiet --rounds "$rounds" --checkpoint-every "$rounds" --out "$dir" "${extra[@]}" >/dev/null
        end=$(date +%s.%N)
        awk -F, -v variant="$variant" -v rep="$rep" -v wall="$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" '
            NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
            { n++; seconds += $col["seconds"]; sent += $col["coordinator_bytes_sent"]; received += $col["coordinator_bytes_received"] }
            END {
                printf "{\"name\":\"cluster_main_job\",\"variant\":\"%s\",\"rep\":%d,\"rounds\":%d,\"wall_seconds\":%.2f,\"round_seconds_mean\":%.4f,\"startup_seconds\":%.2f,\"coordinator_bytes_sent_per_round\":%d,\"coordinator_bytes_received_per_round\":%d}\n",
                    variant, rep, n, wall, seconds / n, wall - seconds, sent / n, received / n
            }' "$dir/metrics.csv"
        if ! cmp -s "$dir/model.safetensors" "$out/single-1/model.safetensors"; then
            echo "cluster-bench: $dir/model.safetensors differs from the in-process run's" >&2
            exit 1
        fi
        round_times[$variant]+="$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next } { n++; s += $col["seconds"] } END { printf "%.4f ", s / n }' "$dir/metrics.csv")"
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
base=$(echo "${round_times[single]}" | median)
for variant in "${variants[@]}"; do
    m=$(echo "${round_times[$variant]}" | median)
    printf '{"name":"cluster_main_job_median","variant":"%s","reps":%d,"round_seconds_median":%.4f,"overhead_vs_single":%.4f}\n' \
        "$variant" "$reps" "$m" "$(awk -v m="$m" -v b="$base" 'BEGIN { print m / b - 1 }')"
done
echo "cluster-bench: run directories in $out" >&2
