#!/usr/bin/env bash
# The Table 2 verdict grid at the paper preset (Table 8) on one GPU: baseline (MDM and ARM),
# lambda-DCE and a GPT-2-sized output layer (MDM), L = 10, 20, 30, 40, 8 seeds each.
#
#   PYTHONPATH=. OUT=/some/dir bash scripts/gpu_table2_verdict.sh            # run (resumable)
#   PYTHONPATH=. bash scripts/gpu_table2_verdict.sh --dry-run --L 10          # list cells only
#
# Writes OUT/verdict_paper/<variant>/L<L>/ (run directories) and OUT/toy_verdict_paper.json;
# copy the latter to results/ and run `python scripts/make_results.py` to publish its tables.
# Extra arguments go to scripts/toy_grid.py (e.g. --L 20, --variants baseline, --seeds 3).
set -euo pipefail
OUT="${OUT:-runs}"
cd "$(dirname "$0")/.."
exec python scripts/toy_grid.py --grid table2_verdict --preset paper \
    --out "$OUT/verdict_paper" --verdict "$OUT/toy_verdict_paper.json" --no-progress "$@"
