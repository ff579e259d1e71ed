"""`oneprot pretrain`: masked-LM pretraining of the sequence or 3Di ESM-2-architecture encoder.

    oneprot pretrain --modality sequence --preset demo --data demo --out runs/pretrain_seq
Architecture comes from the preset's encoder config; steps/batch/lr from its pretrain section.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modality", required=True, choices=["sequence", "structure_tokens"])
    parser.add_argument("--preset", default="demo", help="named preset (architecture + pretrain recipe)")
    parser.add_argument("--data", default="demo", help="store name or folder (its train split is used)")
    parser.add_argument("--out", required=True, help="output folder (loadable as encoder weights)")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's step count")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--init", default=None, metavar="WEIGHTS",
                        help="start from these ESM weights (released name, .pt file or pretrain folder), e.g. the "
                        "pretrained sequence encoder for the 3Di one; default: random")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from engine.data.store import ProteinStore
    from engine.encoders.esm_arch import EsmArch
    from engine.errors import OneProtError
    from engine.presets import get_preset
    from engine.pretrain import pretrain

    if args.threads:
        torch.set_num_threads(args.threads)
    preset = get_preset(args.preset)
    enc = preset.model.encoders.get(args.modality)
    if enc is None:
        raise OneProtError(f"preset {args.preset!r} has no {args.modality} encoder", "--modality")
    cfg = preset.pretrain.get(args.modality)
    if cfg is None:
        from engine.presets.base import PretrainConfig

        cfg = PretrainConfig()
    for field in ("steps", "batch_size", "lr"):
        if getattr(args, field) is not None:
            setattr(cfg, field, getattr(args, field))
    arch = EsmArch(enc.get("layers", 6), enc.get("dim", 320), enc.get("heads", 20), token_dropout=enc.get("token_dropout", True))
    store = ProteinStore.open(args.data)
    summary = pretrain(args.modality, store, arch, cfg, args.out, progress=not args.quiet, init=args.init)
    print(json.dumps(summary, indent=2))
    return 0
