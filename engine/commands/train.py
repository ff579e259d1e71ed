"""`oneprot train`: align every modality encoder to the sequence anchor (symmetric InfoNCE).

    oneprot train --preset demo --data demo --out RUN [--resume] [--steps N]
                  [--pretrained-sequence PATH] [--pretrained-structure-tokens PATH]
Multi-GPU / multi-process: torchrun --nproc_per_node=K -m engine.cli train ...
Writes RUN/metrics.jsonl, RUN/checkpoint/ (resumable) and RUN/model/ (final checkpoint).
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="demo", help="named preset (see engine/presets)")
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
    parser.add_argument("--modalities", default=None,
                        help="comma-separated subset of the preset's modalities to build (sequence is always kept)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_preset(name: str, modalities: list[str] | None = None, pretrained: dict[str, str | None] | None = None):
    """The named preset narrowed to `modalities` (sequence always kept), with pretrained ESM weights
    {modality: path} set on their encoders (None paths are skipped)."""
    from engine.errors import OneProtError
    from engine.modality import parse_modality
    from engine.presets import get_preset

    preset = get_preset(name)
    enc = preset.model.encoders
    if modalities:
        keep = {parse_modality(m).value for m in modalities} | {"sequence"}
        missing = keep - set(enc)
        if missing:
            raise OneProtError(f"preset {name!r} has no encoder for {sorted(missing)}", "--modalities")
        preset.model.encoders = {m: c for m, c in enc.items() if m in keep}
    for modality, path in (pretrained or {}).items():
        if path:
            if modality not in preset.model.encoders:
                raise OneProtError(f"preset {name!r} has no {modality} encoder",
                                   f"--pretrained-{modality.replace('_', '-')}")
            preset.model.encoders[modality]["weights"] = path
    return preset


def run(args: argparse.Namespace) -> int:
    import torch

    from engine.data.store import ProteinStore
    from engine.model import OneProt
    from engine.train import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    modalities = [m for m in args.modalities.split(",") if m.strip()] if args.modalities else None
    preset = build_preset(args.preset, modalities, {"sequence": args.pretrained_sequence,
                                                     "structure_tokens": args.pretrained_structure_tokens})
    for field in ("batch_size", "lr", "seed"):
        if getattr(args, field) is not None:
            setattr(preset.train, field, getattr(args, field))
    store = ProteinStore.open(args.data)
    torch.manual_seed(preset.train.seed)
    model = OneProt(preset.model)
    trainer = Trainer(model, store, preset.train, args.out, progress=not args.quiet)
    summary = trainer.fit(steps=args.steps, resume=args.resume)
    if trainer.rank == 0:
        print(json.dumps(summary, indent=2))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0
