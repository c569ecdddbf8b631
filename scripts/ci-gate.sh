#!/usr/bin/env bash
# The CI performance gate: simulate the ci-smoke day (compressed, scaled down) and judge it.
# Writes runs/ci-smoke/{report.html,report.md,junit.xml,summary.json}; exits like `matchday gate`
# (0 every budget passes, warnings allowed; 1 a budget failed; 2 bad input).
# Used by .ci/run and by the GitHub Actions example, so the example is exercised.
set -euo pipefail
MATCHDAY="${MATCHDAY:-.venv/bin/matchday}"
OUT="${1:-runs/ci-smoke}"
rm -rf "$OUT"
# simulate exits 1 when a budget fails; the gate below is what decides, so go on.
"$MATCHDAY" simulate ci-smoke --compress 10 --load-scale 0.05 --seed 1 --out "$OUT" >/dev/null || true
"$MATCHDAY" gate "$OUT"
