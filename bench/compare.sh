#!/usr/bin/env bash
# Runs every workload on Uzzap, Prosody and ejabberd in one sitting, interleaved
# per workload, and appends the JSON lines to bench/results/compare-<date>.jsonl.
# usage: bash bench/compare.sh [runs-per-target (1)] [workloads...]
set -u
cd "$(dirname "$0")/.."
runs=${1:-1}; shift || true
workloads=${*:-chat login conns presence}
out=bench/results/compare-$(date -u +%Y-%m-%d).jsonl
mkdir -p bench/results
for w in $workloads; do
  for r in $(seq 1 "$runs"); do
    for t in uzzap prosody ejabberd; do
      echo "== $w on $t (run $r)" >&2
      timeout 900 node bench/run.mjs "$w" --target "$t" >> "$out" || echo "== $w on $t failed" >&2
    done
  done
done
echo "results in $out" >&2
