"""Does a ProNet structure encoder align to sequence by geometry, not by residue composition?

Aligns a small ProNet (backbone level: the demo store keeps no side chains) to the demo checkpoint's frozen
sequence encoder and head on the demo store's train split (structure pairs only, upstream's augmentations on),
then scores structure -> sequence retrieval on the valid split with every residue type masked (all residues
'unknown', so only geometry is left), beside the same with types visible, the demo checkpoint's own GNN
under the same masking, and chance. Choices are made on valid; the test split is not read.

    python scripts/pronet_floor.py --steps 150 --out runs/pronet_floor
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from engine.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_checkpoint, read_json, read_weights
from engine.data.items import items_for
from engine.data.store import ProteinStore
from engine.errors import OneProtError
from engine.files import write_text_atomic
from engine.modality import StructureInput
from engine.model import ModelConfig, OneProt
from engine.paths import resolve_checkpoint
from engine.presets.base import TrainConfig
from engine.train import Trainer, recall_at


def masked(items: list[StructureInput]) -> list[StructureInput]:
    """The same structures with every residue type unknown."""
    return [StructureInput("X" * len(it.sequence), it.coords, side_chains=it.side_chains) for it in items]


def scores(model: OneProt, store: ProteinStore, ids: list[str]) -> dict:
    """structure -> sequence R@1 / R@10 on `ids`, types visible and masked."""
    seq = model.embed("sequence", items_for(store, ids, "sequence"))
    items = items_for(store, ids, "structure")
    out = {}
    for name, it in (("types visible", items), ("types masked", masked(items))):
        r = recall_at(model.embed("structure", it), seq)
        out[name] = {"R@1": r[1], "R@10": r[10]}
    return out


def demo_scores(store: ProteinStore, ids: list[str]) -> dict | str:
    """The demo checkpoint's own structure GNN under the same test (needs its bundled text model to load)."""
    try:
        return scores(load_checkpoint("demo"), store, ids)
    except OneProtError as exc:
        return f"not run: {exc}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--neighbors", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--eval-every", type=int, default=0, help="log held-out R@10 (types visible) every N steps")
    ap.add_argument("--out", default="runs/pronet_floor")
    args = ap.parse_args()
    torch.set_num_threads(1 if not torch.cuda.is_available() else 8)
    t0 = time.perf_counter()
    store = ProteinStore.open("demo")
    # the demo checkpoint's sequence encoder and head, read from its files (its text model is not needed)
    folder = resolve_checkpoint("demo")
    demo_cfg, demo_state = read_json(folder / CONFIG_FILE), read_weights(folder / WEIGHTS_FILE)
    pronet = {"type": "pronet", "level": "backbone", "num_blocks": args.blocks, "hidden_channels": args.hidden,
              "out_channels": args.hidden, "mid_emb": 32, "max_neighbors": args.neighbors, "max_residues": 256,
              "dropout": 0.1, "out_dropout": 0.0}
    cfg = ModelConfig(encoders={"sequence": dict(demo_cfg["encoders"]["sequence"]), "structure": pronet},
                      dim=demo_cfg["dim"], head=demo_cfg["head"], temperature=demo_cfg["temperature"])
    torch.manual_seed(args.seed)
    model = OneProt(cfg)
    own = {k: v for k, v in demo_state.items() if k.startswith(("encoders.sequence.", "heads.sequence."))}
    model.load_state_dict(own, strict=False)
    model.encoders["sequence"].requires_grad_(False)  # the anchor stays the demo's: only structure aligns
    model.heads["sequence"].requires_grad_(False)
    train = TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, eval_every=args.eval_every,
                        eval_size=146, checkpoint_every=0, seed=args.seed, bf16=False)
    out = Path(args.out)
    Trainer(model, store, train, out, progress=False).fit(final_save=False)
    model.eval()
    ids = store.ids(split="valid", modality="structure")
    result = {"valid_structures": len(ids), "chance_R@10": 10 / len(ids), "steps": args.steps,
              "pronet": scores(model, store, ids), "demo GNN (checkpoint demo)": demo_scores(store, ids),
              "seconds": round(time.perf_counter() - t0, 1), "args": vars(args)}
    result["pronet masked R@10 / chance"] = result["pronet"]["types masked"]["R@10"] / result["chance_R@10"]
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "result.json", json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
