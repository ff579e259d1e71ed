"""`oneprot train`: align every modality encoder to the sequence anchor (symmetric InfoNCE).

    oneprot train --preset demo --data demo --out RUN [--resume] [--steps N] [--modalities M,...]
                  [--pretrained-sequence PATH] [--pretrained-structure-tokens PATH] [--set KEY=VALUE ...]
--set changes the preset (engine/recipe.py), e.g. --set encoders.structure_tokens.train_mask=0.2 --set train.lr=2e-3.
Multi-GPU / multi-process: torchrun --nproc_per_node=K -m engine.cli train ...
Writes RUN/metrics.jsonl, RUN/checkpoint/ (resumable) and RUN/model/ (final checkpoint).
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.recipe import add_recipe_arguments

    add_recipe_arguments(parser)
    parser.add_argument("--data", default="demo", help="store name or folder")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint if present")
    parser.add_argument("--steps", type=int, default=None, help="total steps (overrides the preset)")
    parser.add_argument("--batch-size", type=int, default=None, help="global batch (overrides the preset)")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--pretrained-sequence", default=None, metavar="PATH",
                        help="weights for the sequence encoder: pretrain folder, fair-esm .pt, or released name")
    parser.add_argument("--pretrained-structure-tokens", default=None, metavar="PATH",
                        help="weights for the 3Di encoder (pretrain folder or fair-esm .pt)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from engine.data.store import ProteinStore
    from engine.recipe import apply_overrides, build_trainer, recipe_from_args

    if args.threads:
        torch.set_num_threads(args.threads)
    preset = recipe_from_args(args, {"sequence": args.pretrained_sequence,
                                     "structure_tokens": args.pretrained_structure_tokens})
    flags = {f: getattr(args, f) for f in ("batch_size", "lr", "seed") if getattr(args, f) is not None}
    apply_overrides(preset, {"train": flags}, "--batch-size/--lr/--seed")
    store = ProteinStore.open(args.data)
    trainer = build_trainer(preset, store, args.out, progress=not args.quiet)
    summary = trainer.fit(steps=args.steps, resume=args.resume)
    if trainer.rank == 0:
        print(json.dumps(summary, indent=2))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0
