#!/usr/bin/env bash
# Regenerates docs/strategies.md "Is it worth it?" (and docs/eval/: each run's report.md,
# report.json and plots) from `specserve eval` on the demo's held-out splits. Runs alone:
# the latencies in it are measured. Takes a couple of minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
OUT=docs/eval
rm -rf "$OUT"
run() {
  local name=$1
  shift
  echo "eval: $name" >&2
  node src/cli.ts eval --out "$OUT/$name" "$@" >&2
}
# shellcheck disable=SC2054 # the commas are inside one argument (a budget list)
demo=(-c examples/demo.yaml --budgets 5,20,50)
# shellcheck disable=SC2054
variants=(-c examples/eval.yaml --budgets 5,50)
# The demo's ensembles, each against its members alone.
run cancer "${demo[@]}" --data models/cancer_holdout.csv --label label --ensembles cancer,cancer-straggler
run wine "${demo[@]}" --data models/wine_holdout.csv --label label --ensembles wine
run digits "${demo[@]}" --data models/digits_holdout.csv --label label --ensembles digits
run diabetes "${demo[@]}" --data models/diabetes_holdout.csv --label target --ensembles diabetes
# The preferred member straggles on one request in four (30 ms late).
run cancer-straggler-profile "${demo[@]}" --data models/cancer_holdout.csv --label label --ensembles cancer \
  --latency-profile cancer-logreg=30@0.25
# Variants (examples/eval.yaml): hard vs soft votes, adaptive selection, calibrated best-quality.
run cancer-variants "${variants[@]}" --data models/cancer_holdout.csv --label label --ensembles cancer-mlp-first,cancer-logreg-first,cancer-soft
run wine-variants "${variants[@]}" --data models/wine_holdout.csv --label label --ensembles wine-hard,wine-soft,wine-soft-rf
run digits-variants "${variants[@]}" --data models/digits_holdout.csv --label label \
  --ensembles digits-hard,digits-soft,digits-soft-adaptive,digits-best --calibrate
node scripts/eval-section.ts
