"""`tiny`: every modality at toy size, so tests build, train and save a model in seconds."""

from __future__ import annotations

from engine.model import ModelConfig
from engine.presets.base import PretrainConfig, Preset, TrainConfig


def build() -> Preset:
    """The tiny preset."""
    esm = {"layers": 2, "dim": 32, "heads": 4, "pooling": "mean", "max_length": 128}
    gnn = {"hidden": 32, "layers": 2, "cutoff": 10.0, "max_neighbors": 16, "rbf": 8}
    return Preset(
        name="tiny",
        description="toy sizes for tests (random ESM weights, frozen bundled MiniLM text model)",
        model=ModelConfig(
            encoders={
                "sequence": dict(esm, pooling="attention"),
                "structure_tokens": dict(esm),
                "structure": dict(gnn),
                "pocket": dict(gnn),
                "text": {"model": "minilm", "pooling": "mean", "freeze": True, "max_length": 64},
            },
            dim=32,
            head="linear",
            temperature=0.07,
        ),
        train=TrainConfig(steps=20, batch_size=8, lr=1e-3, eval_every=10, eval_size=16, checkpoint_every=10),
        pretrain={
            "sequence": PretrainConfig(steps=10, batch_size=8, lr=1e-3, warmup_steps=2, max_length=64),
            "structure_tokens": PretrainConfig(steps=10, batch_size=8, lr=1e-3, warmup_steps=2, max_length=64),
        },
    )
