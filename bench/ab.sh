#!/usr/bin/env bash
# Two builds (or two configurations) side by side at a fixed rate, at the same time:
# both servers share CPU 0 and both generators CPU 1, so a machine whose speed drifts
# between runs (this one: up to 1.7x within minutes) slows both alike, and the ratio
# of their CPU per message is what is compared. Sequential closed-loop runs could not
# show a 10% difference here; an A/A run of this script differs by ~3%.
#
#   bench/ab.sh DIR_A DIR_B [RATE] [SECONDS] [-- args for A -- args for B]
#   bench/ab.sh /tmp/old-checkout . 4000 20 -- "" "--uzzap-env UZZAP_MODULES_DISABLED=mam"
#
# Each DIR is a checkout with `npm ci` done and dist/ built. RATE must leave CPU 0
# idle part of the time (both servers together below ~80%), or queueing adds noise.
set -euo pipefail
A=$1; B=$2; RATE=${3:-4000}; SECS=${4:-20}
ARGS_A=""; ARGS_B=""
if [ "${5:-}" = "--" ]; then ARGS_A=${6:-}; ARGS_B=${7:-}; fi
OUT=$(mktemp -d)
# shellcheck disable=SC2086
(cd "$A" && npm run -s bench -- chat --rate "$RATE" --duration "$SECS" $ARGS_A > "$OUT/a.json" 2> "$OUT/a.err") &
# shellcheck disable=SC2086
(cd "$B" && npm run -s bench -- chat --rate "$RATE" --duration "$SECS" $ARGS_B > "$OUT/b.json" 2> "$OUT/b.err") &
wait
node -e '
const fs = require("fs");
const [a, b] = ["a", "b"].map((n) => JSON.parse(fs.readFileSync(process.argv[1] + "/" + n + ".json", "utf8")));
for (const [n, d] of [["A", a], ["B", b]])
  console.log(n, d.msgs_per_s, "msgs/s, server CPU s per 10k msgs", d.server_cpu_s_per_10k_msgs, "p99", d.latency_ms.p99, "ms, max", d.latency_ms.max, "ms, archive rows per msg", d.archive_rows_per_sent_msg ?? "-");
console.log("B/A CPU per message", (b.server_cpu_s_per_10k_msgs / a.server_cpu_s_per_10k_msgs).toFixed(3));
' "$OUT"
rm -rf "$OUT"
