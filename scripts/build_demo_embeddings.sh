#!/usr/bin/env bash
# Rebuilds the bundled demo embeddings (assets/embeddings/demo) with the bundled demo checkpoint.
# Which proteins: the test split plus every protein with a structure, pocket, family or EC label
# (3.8k of the store's 21k), so the explorer's maps and hits stay meaningful while the folder stays
# small enough for git. Run after scripts/train_demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${DEST:-assets/embeddings/demo}
ids=$(mktemp)
python - "$ids" <<'PY'
import sys
from engine.data.store import ProteinStore
p = ProteinStore.open("demo").proteins
keep = (p["split"] == "test") | p["has_structure"] | (p["n_pockets"] > 0) | p["family"].notna() | p["ec"].notna()
open(sys.argv[1], "w").write("\n".join(p["id"][keep]) + "\n")
print(f"{int(keep.sum())} proteins selected")
PY
rm -rf "$DEST.new"
# 128k-token batches: the UniRep anchor's recurrence steps through the longest sequence of a batch, so at the
# default 16k tokens (~40 sequences) its per-step overhead dominates: on the shared 2 cores on 2026-11-30 the first
# 2,048 sequences took ~10 min at 16k tokens and the other 1,745 took ~1 min at 128k
python -m engine.cli embed --checkpoint demo --data demo --ids "$ids" --out "$DEST.new" --batch-tokens 131072
# significance of hits (E-value null + calibrated probability) beside the embeddings, and its check
python -m engine.cli calibrate --embeddings "$DEST.new" --data demo --report benchmarks/results/significance_calibration.md
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
rm -f "$ids"
