"""The dataclasses a preset is made of: model shape, alignment training, masked-LM pretraining."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from engine.model import ModelConfig


@dataclass
class TrainConfig:
    """Alignment training. Each step trains one (sequence, modality) pair type, as in the paper."""

    steps: int = 1000
    batch_size: int = 32  # pairs per step, summed over all ranks (the global batch)
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    warmup_steps: int = 0  # linear warm-up, then constant (the paper uses a constant rate)
    decay_fraction: float = 0.0  # > 0: the rate falls linearly to 0 over this last fraction of the run
    modality_weights: dict[str, float] | None = None  # None: round-robin over modalities
    eval_every: int = 100  # held-out R@1 every this many steps (0: only at the end)
    eval_size: int = 64  # valid-split proteins per modality for that R@1
    checkpoint_every: int = 100
    seed: int = 0
    bf16: bool = True  # autocast on CUDA only; CPU runs stay fp32
    # > 0: 3Di training items are recomputed from backbone coordinates with this much Gaussian noise (Å),
    # for the fraction structure_tokens_noise_prob of the items (engine/data/noisy_tokens3di.py)
    structure_tokens_noise: float = 0.0
    structure_tokens_noise_prob: float = 1.0
    # a frozen anchor that supports it (UniRep) computes its features once into RUN/anchor_cache and reads
    # them back at every step (engine/encoders/feature_cache.py)
    anchor_cache: bool = True
    anchor_cache_dir: str | None = None  # None: RUN/anchor_cache; a folder shared by runs computes each anchor once
    modality_batch_sizes: dict[str, int] | None = None  # per-modality global batch, overriding batch_size
    l1_weight: float = 0.0  # upstream OneProt: 0.01 * (mean|z_sequence| + mean|z_modality|) added to each pair loss
    # pairs whose loss also moves the sequence side (its pooling and head); None: every pair (the paper). The others
    # align to the sequence space without moving it (the sequence embeddings detached in their steps)
    anchor_trained_by: list[str] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PretrainConfig:
    """Masked-LM pretraining of one ESM-2-architecture encoder (15% masked, 80/10/10)."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 50
    max_length: int = 256  # residues per random crop
    mask_prob: float = 0.15
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Preset:
    """A named recipe: the model to build, how to align it, how to pretrain its ESM encoders."""

    name: str
    description: str
    model: ModelConfig
    train: TrainConfig
    pretrain: dict[str, PretrainConfig] = field(default_factory=dict)  # keyed by modality

    def to_dict(self) -> dict:
        return {
            "name": self.name, "description": self.description, "model": self.model.to_dict(),
            "train": self.train.to_dict(), "pretrain": {k: v.to_dict() for k, v in self.pretrain.items()},
        }


def unirep_sequence(size: int = 256, pooling: str = "mean", max_length: int = 2000) -> dict:
    """Encoder config of a frozen, pretrained UniRep sequence anchor (engine.encoders.unirep), e.g. for a preset:
    `encoders["sequence"] = unirep_sequence(256, "attention")`."""
    return {"type": "unirep", "size": size, "pooling": pooling, "freeze": True, "max_length": max_length}

