"""`paper`: the published OneProt configuration, as upstream's public code sets it up.

Facts from klemens-floege/oneprot and oneprot-models/oneprot-embeddings (configs/experiment/
train_ddp_10440880.yaml); docs/upstream_vs_paper_preset.md lists every remaining difference.
Needs the released ESM-2 weights (fair-esm downloads them once) and BiomedBERT (hub or HF cache).
"""

from __future__ import annotations

from engine.encoders.text import BIOMEDBERT
from engine.model import ModelConfig
from engine.presets.base import Preset, TrainConfig


def build() -> Preset:
    """The paper preset."""
    # ProNet as the published run sets it: 4 blocks, hidden 128, 10 A, 32 neighbours, dropout 0.25, output 1024
    pronet = {"type": "pronet", "num_blocks": 4, "hidden_channels": 128, "out_channels": 1024, "cutoff": 10.0,
              "max_neighbors": 32, "dropout": 0.25, "out_dropout": 0.25}
    return Preset(
        name="paper",
        description="ESM-2 650M frozen + attention1d pooling, 3Di ESM-2 35M fine-tuned (ESM vocabulary + 21 "
        "3Di tokens), ProNet all-atom (structure) and backbone (pocket, 100 residues), BiomedBERT frozen (CLS) + "
        "MLP head, LayerNorm + bias-free Linear heads, 1024-d, tau 0.07, "
        "L1 0.01, Adam 1e-3 fp32",
        model=ModelConfig(
            encoders={
                "sequence": {"weights": "esm2_t33_650M_UR50D", "pooling": "attention1d", "freeze": True},
                "structure_tokens": {"weights": "esm2_t12_35M_UR50D", "pooling": "mean_bos_eos", "freeze": False,
                                     "alphabet": "3di_upstream"},
                "structure": dict(pronet, level="allatom"),
                # the 100 residues nearest the pocket centre (upstream's pockets_100_residues.h5)
                "pocket": dict(pronet, level="backbone", pocket_residues=100),
                "text": {"model": BIOMEDBERT, "pooling": "cls", "freeze": True, "max_length": 512},
            },
            dim=1024,
            head="ln_linear",
            heads={"text": "ln_mlp"},
            temperature=0.07,
            learn_temperature=False,
        ),
        # global batches of the published run: 32 pairs per GPU (16 for 3Di) on 64 GPUs; scale batch_size and
        # modality_batch_sizes to the GPUs at hand
        train=TrainConfig(steps=100_000, batch_size=2048, modality_batch_sizes={"structure_tokens": 1024}, lr=1e-3,
                          grad_clip=1.0, eval_every=1000, eval_size=1000, checkpoint_every=1000, bf16=False,
                          l1_weight=0.01),
    )
