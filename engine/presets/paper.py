"""`paper`: the published OneProt configuration (arXiv 2411.04863 and its public configs).

Needs the released ESM-2 weights (fair-esm downloads them once) and BiomedBERT (hub or HF cache).
"""

from __future__ import annotations

from engine.encoders.text import BIOMEDBERT
from engine.model import ModelConfig
from engine.presets.base import Preset, TrainConfig


def build() -> Preset:
    """The paper preset."""
    gnn = {"hidden": 128, "layers": 4, "cutoff": 10.0, "max_neighbors": 32, "rbf": 16}
    return Preset(
        name="paper",
        description="ESM-2 650M frozen + attention pooling, 3Di ESM-2 35M fine-tuned, GNNs 4x128 at 10 A, "
        "BiomedBERT frozen (CLS), 1024-d, tau 0.07, Adam 1e-3",
        model=ModelConfig(
            encoders={
                "sequence": {"weights": "esm2_t33_650M_UR50D", "pooling": "attention", "freeze": True},
                "structure_tokens": {"weights": "esm2_t12_35M_UR50D", "pooling": "mean", "freeze": False},
                "structure": dict(gnn),
                "pocket": dict(gnn),
                "text": {"model": BIOMEDBERT, "pooling": "cls", "freeze": True, "max_length": 512},
            },
            dim=1024,
            head="linear",
            temperature=0.07,
            learn_temperature=False,
        ),
        train=TrainConfig(steps=100_000, batch_size=64, lr=1e-3, grad_clip=1.0, eval_every=1000,
                          eval_size=512, checkpoint_every=1000),
    )
