#!/usr/bin/env bash
# Every GPU check of the project in one go, sized for a short lease of one H100/H200:
#   the CUDA tests, the demo checkpoint in bf16 on the GPU against fp32 on the CPU, and the
#   ESM-2 embedding benchmark (benchmarks/gpu_embed.py). Results go to $OUT (default gpu_check/).
# Needs torch with CUDA, transformers, pytest; fair-esm (pure Python) on PYTHONPATH or installed.
#   bash scripts/gpu_check.sh [time budget of the benchmark's optional methods, s (default 200)]
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
echo "== CUDA tests"
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/engine/encoders/test_packed_esm.py \
  tests/engine/test_embed.py tests/engine/test_train.py tests/engine/commands/test_embed_gpu.py 2>&1 | tee "$OUT/gpu_tests.log"
echo "== demo checkpoint, bf16 GPU vs fp32 CPU"
timeout 100 python3 scripts/gpu_demo_check.py --out "$OUT/gpu_demo_check.md" 2>&1 | tail -8
echo "== ESM-2 embedding benchmark"
timeout 320 python3 benchmarks/gpu_embed.py --time-budget "${1:-200}" --out "$OUT/gpu_embed.md" 2>&1 | tee "$OUT/gpu_embed.log"
