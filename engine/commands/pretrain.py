"""`oneprot pretrain`: masked-LM pretraining of the sequence or 3Di ESM-2-architecture encoder.

    oneprot pretrain --modality sequence --preset demo --data demo --out runs/pretrain_seq [--set KEY=VALUE ...]
Architecture comes from the preset's encoder config; steps/batch/lr from its pretrain section; --set changes
either (engine/recipe.py), e.g. --set pretrain.sequence.max_length=64 --set encoders.sequence.layers=2.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.recipe import add_recipe_arguments

    parser.add_argument("--modality", required=True, choices=["sequence", "structure_tokens"])
    add_recipe_arguments(parser, modalities=False)
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
    from engine.pretrain import pretrain
    from engine.recipe import apply_overrides, recipe_from_args

    if args.threads:
        torch.set_num_threads(args.threads)
    preset = recipe_from_args(args)
    enc = preset.model.encoders.get(args.modality)
    if enc is None:
        raise OneProtError(f"preset {args.preset!r} has no {args.modality} encoder", "--modality")
    if enc.get("type", "esm") != "esm":
        raise OneProtError(f"the {args.modality} encoder is of type {enc['type']!r}; masked-LM pretraining builds "
                           "ESM-2-architecture encoders only (a UniRep anchor comes pretrained and stays frozen)",
                           "--modality")
    flags = {f: getattr(args, f) for f in ("steps", "batch_size", "lr") if getattr(args, f) is not None}
    apply_overrides(preset, {"pretrain": {args.modality: flags}}, "--steps/--batch-size/--lr")
    cfg = preset.pretrain[args.modality]
    arch = EsmArch(enc.get("layers", 6), enc.get("dim", 320), enc.get("heads", 20), token_dropout=enc.get("token_dropout", True))
    store = ProteinStore.open(args.data)
    summary = pretrain(args.modality, store, arch, cfg, args.out, progress=not args.quiet, init=args.init)
    print(json.dumps(summary, indent=2))
    return 0
