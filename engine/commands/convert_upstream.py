"""`oneprot convert-upstream`: upstream OneProt's release (config.yaml + pytorch_model.bin) -> a checkpoint folder.

    oneprot convert-upstream path/to/upstream_folder --out ckpt/          # local folder
    oneprot convert-upstream HelmholtzAI-FZJ/oneprot --out ckpt/          # Hugging Face repository (online)
    oneprot embed --checkpoint ckpt/ --data demo --out emb/
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="folder with config.yaml and pytorch_model.bin, or a Hugging Face repository name")
    p.add_argument("--out", required=True, help="checkpoint folder to write (atomically)")
    p.add_argument("--text-model", help="text model name or folder for tokenizer and config "
                                        "(default: model_name_or_path in config.yaml)")
    p.add_argument("--esm-heads", type=int, metavar="N",
                   help="attention heads of the ESM encoders, when config.yaml names no known ESM-2")
    p.add_argument("--json", action="store_true", help="print the full conversion report as JSON")


def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import convert_upstream, read_meta

    heads = {"sequence": args.esm_heads, "structure_tokens": args.esm_heads} if args.esm_heads else None
    folder, report = convert_upstream(args.src, args.out, text_model=args.text_model, esm_heads=heads)
    meta = read_meta(folder)
    if args.json:
        print(json.dumps({"checkpoint": str(folder), "model_hash": meta["model_hash"], **report}, indent=2))
        return 0
    print(f"wrote {folder} (model hash {meta['model_hash']}, modalities {', '.join(meta['modalities'])})")
    print(f"upstream tensors: {report['upstream_tensors']}; consumed {report['consumed']}, checked equal "
          f"{len(report['checked_equal'])}, unused {len(report['unused'])}")
    for key, why in sorted(report["unused"].items()):
        print(f"  unused {key}: {why}")
    return 0
