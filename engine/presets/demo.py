"""`demo`: small enough to pretrain and align on 2 CPU cores in about 15 minutes.

Recipe (scripts/train_demo.sh): pretrain the sequence and 3Di ESM-2-architecture encoders with
masked LM on the demo store, then align every modality to sequence on its train split, with the
bundled all-MiniLM-L6-v2 as the frozen text backbone.
"""

from __future__ import annotations

from engine.model import ModelConfig
from engine.presets.base import PretrainConfig, Preset, TrainConfig


def build() -> Preset:
    """The demo preset."""
    return Preset(
        name="demo",
        description="small ESM-2-architecture encoders pretrained on the demo store, GNNs 2x64, "
        "frozen MiniLM text, 128-d shared space",
        model=ModelConfig(
            encoders={
                "sequence": {"layers": 3, "dim": 96, "heads": 6, "pooling": "attention", "freeze": False,
                             "max_length": 256},
                # 15% of 3Di tokens masked while aligning: the 3Di encoder sees only ~380 train structures and
                # overfits them without it (valid R@10 x chance 3.6 -> 4.5-4.8 in 250-step 3Di-only runs)
                "structure_tokens": {"layers": 2, "dim": 64, "heads": 4, "pooling": "attention", "freeze": False,
                                     "max_length": 256, "train_mask": 0.15},
                "structure": {"hidden": 64, "layers": 2, "cutoff": 10.0, "max_neighbors": 16, "rbf": 16,
                              "max_residues": 256},
                "pocket": {"hidden": 48, "layers": 2, "cutoff": 10.0, "max_neighbors": 16, "rbf": 16,
                           "shell": 10.0},
                "text": {"model": "minilm", "pooling": "mean", "freeze": True, "max_length": 96,
                         "cache_size": 50_000},
            },
            dim=128,
            head="linear",
            temperature=0.07,
        ),
        # Structure aligns fastest (train accuracy ~0.9 by step 300), so it gets fewer of the steps; text has
        # ~16,700 train pairs (the others ~380) and keeps improving with more steps. The rate falls linearly
        # to 0 over the last quarter, so the final weights are not one noisy step of a constant rate.
        train=TrainConfig(steps=900, batch_size=24, lr=1e-3, warmup_steps=20, decay_fraction=0.25,
                          eval_every=100, eval_size=64,
                          checkpoint_every=50,
                          modality_weights={"structure": 0.5, "structure_tokens": 1.25, "pocket": 1.25, "text": 1.4}),
        pretrain={
            "sequence": PretrainConfig(steps=300, batch_size=32, lr=2e-3, warmup_steps=30, max_length=128),
            "structure_tokens": PretrainConfig(steps=450, batch_size=32, lr=2e-3, warmup_steps=20, max_length=128),
        },
    )
