#!/usr/bin/env bash
# Rebuilds the bundled demo checkpoint (assets/checkpoints/demo) from the demo store, end to end:
#   1. masked-LM pretraining of the sequence and 3Di ESM-2-architecture encoders on the store's
#      train split (the two run side by side, one CPU thread each);
#   2. alignment of every modality to sequence (symmetric InfoNCE) on the train split, starting from
#      those weights, with the bundled all-MiniLM-L6-v2 as the frozen text backbone;
#   3. export of RUN/align/model to assets/checkpoints/demo (checked to load, hash verified).
# Sized for 2 CPU cores and about 15 minutes. Re-running resumes the alignment from its checkpoint.
#
# Environment: STORE (default: demo), RUN (default: runs/demo), THREADS for alignment (default: 2),
#              DEST (default: assets/checkpoints/demo).
set -euo pipefail
cd "$(dirname "$0")/.."

STORE=${STORE:-demo}
RUN=${RUN:-runs/demo}
THREADS=${THREADS:-2}
DEST=${DEST:-assets/checkpoints/demo}
mkdir -p "$RUN"
start=$(date +%s)

python -m engine.cli pretrain --modality sequence --preset demo --data "$STORE" \
    --out "$RUN/pretrain_sequence" --threads 1 --quiet > "$RUN/pretrain_sequence.json" &
seq_pid=$!
python -m engine.cli pretrain --modality structure_tokens --preset demo --data "$STORE" \
    --out "$RUN/pretrain_structure_tokens" --threads 1 --quiet > "$RUN/pretrain_structure_tokens.json" &
tdi_pid=$!
wait "$seq_pid"
wait "$tdi_pid"
echo "pretraining done after $(( $(date +%s) - start )) s"

python -m engine.cli train --preset demo --data "$STORE" --out "$RUN/align" --resume \
    --pretrained-sequence "$RUN/pretrain_sequence" \
    --pretrained-structure-tokens "$RUN/pretrain_structure_tokens" \
    --threads "$THREADS" --quiet > "$RUN/align.json"
echo "alignment done after $(( $(date +%s) - start )) s"

python -c "import sys; from engine.checkpoint import export_checkpoint; print(export_checkpoint(sys.argv[1], sys.argv[2]))" \
    "$RUN/align/model" "$DEST"
echo "total $(( $(date +%s) - start )) s"
