#!/usr/bin/env bash
# Regenerates every committed demo result file and the README tables built from them, in one command:
#   bash scripts/demo_reports.sh        (or: make demo-reports)
# Run after scripts/train_demo.sh and scripts/build_demo_embeddings.sh. Reporting only: everything here reads the
# test split (choices were made on valid beforehand). About 15 minutes on the 2-core build machine.
# Environment: CHECKPOINT (default demo), BASELINE (default assets/checkpoints/demo-prealign), DATA (default demo).
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKPOINT=${CHECKPOINT:-demo}
BASELINE=${BASELINE:-assets/checkpoints/demo-prealign}
DATA=${DATA:-demo}
R=benchmarks/results
SPLIT=test  # report-only: these files report the chosen model; nothing here chooses
start=$(date +%s)
python -m engine.cli evaluate --checkpoint "$CHECKPOINT" --data "$DATA" --split "$SPLIT" --baseline-checkpoint "$BASELINE" \
    --out "$R/demo_evaluate/result.json" --report "$R/demo_evaluate" > /dev/null
echo "evaluate (ours) done after $(( $(date +%s) - start )) s"
python -m engine.cli evaluate --checkpoint "$CHECKPOINT" --data "$DATA" --split "$SPLIT" --baseline-checkpoint "$BASELINE" \
    --protocol oneprot --out "$R/demo_evaluate_oneprot/result.json" --report "$R/demo_evaluate_oneprot" > /dev/null
echo "evaluate (upstream protocol) done after $(( $(date +%s) - start )) s"
python -m engine.cli probe --checkpoint "$CHECKPOINT" --data "$DATA" --baseline-checkpoint "$BASELINE" \
    --out "$R/demo_probe/result.json" > /dev/null
echo "probe done after $(( $(date +%s) - start )) s"
python scripts/readme_tables.py
