"""`oneprot embed`: embed a store with a checkpoint; merge torchrun shards; export to HDF5 / Parquet.

    oneprot embed --checkpoint demo --data demo --out emb/            # embed (resumable)
    torchrun --nproc-per-node 4 -m engine.cli embed ... --out emb/     # one shard per rank
    oneprot embed --merge --out emb/                                  # join the shards
    oneprot embed --out emb/ --export-h5 seq.h5 --export-parquet all.parquet   # export only
"""

from __future__ import annotations

import argparse
import sys

from engine.errors import OneProtError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="checkpoint folder or 'demo'")
    p.add_argument("--data", help="store folder or 'demo'")
    p.add_argument("--out", required=True, help="embeddings folder to write (or read, for --merge / export)")
    p.add_argument("--split", choices=("train", "valid", "test"), help="embed only this split")
    p.add_argument("--modalities", help="comma-separated subset (default: every modality of the checkpoint)")
    p.add_argument("--ids", metavar="FILE", help="embed only the proteins listed in FILE (one id per line)")
    p.add_argument("--batch-tokens", type=int, default=16_384, help="token budget per batch (padded tokens)")
    p.add_argument("--chunk-size", type=int, default=2048, help="ids per resumable chunk")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (under torchrun: cuda:LOCAL_RANK)")
    p.add_argument("--merge", action="store_true", help="join shard-*-of-* folders under --out")
    p.add_argument("--storage-dtype", default="float32", choices=("float32", "float16"),
                   help="float16 halves the files (bundled demo); readers always get float32")
    p.add_argument("--no-index", action="store_true", help="do not build approximate indexes for large modalities")
    p.add_argument("--export-h5", metavar="FILE", help="write {id: vector} HDF5 (ProtSpace layout) of --export-modality")
    p.add_argument("--export-modality", default="sequence", help="modality for --export-h5 (default sequence)")
    p.add_argument("--export-parquet", metavar="FILE", help="write id, modality, embedding + labels as Parquet")
    p.add_argument("--json", action="store_true", help="print a JSON summary")


def pick_device(name: str):
    """'auto' -> this rank's GPU when there is one, else CPU."""
    import os

    import torch

    if name != "auto":
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise OneProtError("CUDA was asked for but no GPU is visible", "--device")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def run(args: argparse.Namespace) -> int:
    from engine.embed import EmbeddingSet, embed_store, export_h5, export_parquet, merge_shards, shard_from_env

    summary: dict = {}
    if args.merge:
        folder = merge_shards(args.out, build_indexes=not args.no_index)
        summary["merged"] = str(folder)
    elif args.checkpoint or args.data:
        if not (args.checkpoint and args.data):
            raise OneProtError("embedding needs both --checkpoint and --data", "--checkpoint/--data")
        import torch

        from engine.checkpoint import load_checkpoint
        from engine.data.store import ProteinStore

        rank, world = shard_from_env()
        device = pick_device(args.device)
        if device.type == "cpu":
            torch.set_num_threads(max(1, torch.get_num_threads()))
        store = ProteinStore.open(args.data)
        model = load_checkpoint(args.checkpoint, map_location=device)
        mods = [m.strip() for m in args.modalities.split(",")] if args.modalities else None
        ids = None
        if args.ids:
            from pathlib import Path

            if not Path(args.ids).is_file():
                raise OneProtError("no such file", args.ids)
            ids = [line.strip() for line in Path(args.ids).read_text().splitlines() if line.strip()]

        def progress(m: str, k: int, n: int) -> None:
            print(f"[rank {rank}] {m}: chunk {k + 1}/{n} done", file=sys.stderr, flush=True)

        folder = embed_store(model, store, args.out, split=args.split, modalities=mods, batch_tokens=args.batch_tokens,
                             chunk_size=args.chunk_size, rank=rank, world=world, checkpoint=str(args.checkpoint),
                             on_chunk=progress, build_indexes=not args.no_index, storage_dtype=args.storage_dtype,
                             ids=ids)
        summary["folder"] = str(folder)
        if world > 1:
            summary["note"] = f"shard {rank} of {world} written; when every rank is done run: oneprot embed --merge --out {args.out}"
            args.export_h5 = args.export_parquet = None
    elif not (args.export_h5 or args.export_parquet):
        raise OneProtError("nothing to do: give --checkpoint and --data to embed, --merge, or an --export-* option", "embed")
    if args.export_h5 or args.export_parquet:
        eset = EmbeddingSet.open(args.out)
        if args.export_h5:
            summary["h5"] = str(export_h5(eset, args.export_h5, args.export_modality))
        if args.export_parquet:
            summary["parquet"] = str(export_parquet(eset, args.export_parquet))
    try:
        eset = EmbeddingSet.open(args.out)
        summary.update(model_hash=eset.model_hash, dim=eset.dim, counts=eset.manifest["counts"],
                       indexes=eset.manifest.get("indexes", {}))
    except OneProtError:
        pass  # a single shard: the merged folder does not exist yet
    from engine.cli import print_summary

    print_summary(summary, args.json)
    return 0
