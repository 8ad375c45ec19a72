#!/usr/bin/env bash
# The knee on this machine (docs/BENCHMARKS.md, "Load before rollout: the knee on 2 cores"): one
# `harness load` per USERS[:INTERVAL_MS] (users, and the ms between a run's events, 100 by default),
# gated on the normal class, and one table row per load from its summary.json's second half ("steady":
# every user busy). Each load starts and stops its own stack; reports in reports/<time>/load/.
#   scripts/knee.sh 12 24 48 96 160 48:50 48:25      # DURATION=40s by default
#   LOAD_ARGS="--processes 2" scripts/knee.sh 96     # more options of `harness load` for each load
set -uo pipefail  # not -e: a load whose lag leaves the class exits 1, and that is a row too
cd "$(dirname "$0")/.."
echo "| users | run interval ms | open streams | events/s appended | frames/s delivered | live lag p50 / p95 / p99 ms | class p95 / p99" \
     "| busiest process (mean % of one core) | generator % | machine % | load avg before, after |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for point in "$@"; do
  users=${point%%:*} interval=100
  [[ $point == *:* ]] && interval=${point#*:}
  before=$(cut -d' ' -f1 /proc/loadavg)
  .venv/bin/harness load --users "$users" --interval-ms "$interval" --spawn-rate 20 --duration "${DURATION:-40s}" \
      --gate normal ${LOAD_ARGS:-} --json |
    jq -r --arg users "$users" --arg before "$before" '.steady as $s | $s.cpu as $c |
      ([$c.processes | to_entries[] | select(.key | startswith("locust")) | .value.mean] | add) as $gen |
      "| \($users) | \(.configuration.interval_ms) | \($s.open_streams) | \($s.appended_per_s) | \($s.delivered_per_s)" +
      " | \($s.p50) / \($s.p95) / \($s.p99) | \($s.p95_class) / \($s.p99_class) | \($c.busiest) \($c.processes[$c.busiest].mean)" +
      " | \($gen) | \($c.machine.mean) | \($before), \(.cpu.loadavg_at_end[0] * 100 | round / 100) |"'
done
