#!/usr/bin/env bash
# The archive (XEP-0313) benchmarks for Uzzap, appended as JSON lines to
# bench/results/mam-uzzap.jsonl:
#  1. write cost: the chat workload with the archive on (default) and off
#     (UZZAP_MODULES_DISABLED=mam), on SQLite and on Postgres (database
#     uzzap_bench_chat, emptied before each run), interleaved, RUNS times each;
#  2. query latency: the mam workload at --size 100000 then 1000000 (database
#     uzzap_bench_mam, seeded once per size and reused).
# Before each run it waits (at most QUIET_MAX s) until the machine is quiet
# (under QUIET_PCT % busy over 5 s, all CPUs), since other load disturbs
# the figures (each report says how much: other_cpu_pct).
# usage: bash bench/mam.sh [runs (2)] [chat|mam|all (all)]   env: PG_HOST (127.0.0.1:5432)
set -u
cd "$(dirname "$0")/.."
runs=${1:-2}
what=${2:-all}
pg="postgres://postgres@${PG_HOST:-127.0.0.1:5432}"
out=bench/results/mam-uzzap.jsonl
QUIET_PCT=${QUIET_PCT:-10}
QUIET_MAX=${QUIET_MAX:-600}
mkdir -p bench/results

busy_pct() { # % of all CPUs busy over 5 s
  local a b
  read -ra a < <(head -1 /proc/stat); sleep 5; read -ra b < <(head -1 /proc/stat)
  local idle=$(( b[4] - a[4] + b[5] - a[5] )) tot=0 j
  for j in 1 2 3 4 5 6 7 8; do tot=$(( tot + b[j] - a[j] )); done
  echo $(( tot > 0 ? 100 * (tot - idle) / tot : 0 ))
}
wait_quiet() {
  local t0=$SECONDS p
  while :; do
    p=$(busy_pct)
    (( p < QUIET_PCT )) && return 0
    if (( SECONDS - t0 > QUIET_MAX )); then echo "== machine still ${p}% busy after ${QUIET_MAX} s: running anyway" >&2; return 0; fi
    echo "== machine ${p}% busy, waiting" >&2
  done
}
run() {
  echo "== $*" >&2
  wait_quiet
  timeout 900 node bench/run.mjs "$@" >> "$out" || echo "== failed: $*" >&2
}

if [[ $what == all || $what == chat ]]; then
  for r in $(seq 1 "$runs"); do
    run chat
    run chat --uzzap-env UZZAP_MODULES_DISABLED=mam
    run chat --uzzap-env "UZZAP_POSTGRES_URL=$pg/uzzap_bench_chat"
    run chat --uzzap-env "UZZAP_POSTGRES_URL=$pg/uzzap_bench_chat" --uzzap-env UZZAP_MODULES_DISABLED=mam
  done
fi
if [[ $what == all || $what == mam ]]; then
  for size in 100000 1000000; do
    for r in $(seq 1 "$runs"); do run mam --size "$size"; done
  done
fi
echo "results in $out" >&2
