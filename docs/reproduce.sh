#!/usr/bin/env bash
# Re-run the four reproductions of docs/experiments.md (about two minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== (1) seed experiment and (2) the battle: threaded/sequential x100, switches, reacquired"
for policy in ticks fifo timed priority; do
  for interval in 10 100 1000; do
    ratio=$(minivm run --policy "$policy" --check-interval "$interval" --stats-json /tmp/minivm-seed.json programs/seed_ratio.mv)
    python3 - "$policy" "$interval" "$ratio" <<'PY'
import json, sys
s = json.load(open("/tmp/minivm-seed.json"))
checks = s["releaser_reacquired"] + s["switches"]
print(f"{sys.argv[1]:9} interval {sys.argv[2]:>5}  ratio {int(sys.argv[3]) / 100:5.2f}  "
      f"switches {s['switches']:>7}  releaser reacquired {100 * s['releaser_reacquired'] / max(checks, 1):5.1f}%")
PY
  done
done
echo "== (3) the convoy effect"
for policy in ticks fifo timed; do echo "-- $policy"; minivm run --policy "$policy" programs/convoy.mv; done
echo "== (4) the price of the GIL: one thread, ticks against none"
minivm experiment programs/countdown.mv --policy ticks,none --repeat 3
for i in 1 2 3; do minivm run --policy none --heap-check programs/why_gil.mv > /dev/null || true; done
