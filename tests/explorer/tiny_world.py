"""A tiny synthetic world for explorer tests: a store, a tiny-preset checkpoint, its embeddings.

Proteins come in four families; members of a family share a sequence motif and a fold (a
helix-like backbone of family-specific pitch), so even an untrained model puts some structure
on the map. Built only through the engine's public API (write_store, OneProt, save_checkpoint,
embed_store), so the explorer reads exactly what a real run produces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FAMILIES = ("kinase", "globin", "protease", "lectin")
THREE_DI = "ACDEFGHIKLMNPQRSTVWY"


def _backbone(length: int, pitch: float, rng: np.random.Generator) -> np.ndarray:
    """(L, 4, 3) N/CA/C/O on a helix-like trace with ~3.8 A CA spacing."""
    t = np.arange(length, dtype=np.float32)
    ca = np.stack([2.3 * np.cos(t * pitch), 2.3 * np.sin(t * pitch), 1.5 * t], axis=1)
    ca += rng.normal(0, 0.2, ca.shape)
    offsets = np.array([[-1.2, 0.5, -0.4], [0, 0, 0], [1.2, 0.4, 0.5], [1.8, 1.4, 0.6]], dtype=np.float32)
    return (ca[:, None, :] + offsets[None, :, :]).astype(np.float32)


def build_records(n_per_family: int = 8, seed: int = 0):
    """ProteinRecords with every modality for most proteins; one name carries HTML to test escaping."""
    from engine.modality import Pocket, ProteinRecord

    rng = np.random.default_rng(seed)
    aa = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    records = []
    for f, fam in enumerate(FAMILIES):
        motif = "".join(rng.choice(aa, 50))
        for k in range(n_per_family):
            seq = list(motif)
            for pos in rng.choice(len(seq), 6, replace=False):
                seq[pos] = str(rng.choice(aa))
            seq = "".join(seq) + "".join(rng.choice(aa, int(rng.integers(0, 10))))
            L = len(seq)
            coords = _backbone(L, 1.0 + 0.35 * f, rng)
            pid = f"{fam[:3]}{k:02d}_A"
            pockets = []
            if k % 2 == 0:
                res = list(range(10, 18))
                lig = coords[res, 1].mean(0) + rng.normal(0, 0.5, (6, 3)).astype(np.float32)
                pockets = [Pocket(residues=res, ligand_code="NAD" if f % 2 == 0 else "HEM",
                                  ligand_name="NICOTINAMIDE-ADENINE-DINUCLEOTIDE" if f % 2 == 0 else "HEME",
                                  center=lig.mean(0), ligand_coords=lig, ligand_elements=["C"] * 6)]
            name = f"{fam} protein {k}" if k != 1 else f"<b>{fam}</b> & <script>alert(1)</script>"
            records.append(ProteinRecord(
                id=pid, sequence=seq, name=name,
                text=f"A {fam} family member number {k}; binds things." if k % 4 != 3 else "",
                coords=coords if k % 5 != 4 else None,
                structure_tokens="".join(rng.choice(list(THREE_DI), L)),
                pockets=pockets if k % 5 != 4 else [], family=fam,
                ec=f"{f + 1}.{k % 3 + 1}.1.{k}", organism="Homo sapiens" if k % 2 else "Mus musculus",
                source=f"synthetic:{fam}",
            ))
    return records


def build_world(root: Path, n_per_family: int = 8) -> dict[str, Path]:
    """Write store, checkpoint and embeddings under `root`; return their paths."""
    import torch

    from engine.checkpoint import save_checkpoint
    from engine.data.store import write_store
    from engine.embed import embed_store
    from engine.data.store import ProteinStore
    from engine.model import OneProt
    from engine.presets import get_preset

    torch.manual_seed(0)
    root = Path(root)
    records = build_records(n_per_family)
    splits = {r.id: ("valid" if i % 5 == 0 else "train") for i, r in enumerate(records)}
    clusters = {r.id: i for i, r in enumerate(records)}
    store_path = write_store(records, root / "store", splits, clusters, {"built_by": "tests/explorer/tiny_world.py"})
    model = OneProt(get_preset("tiny").model)
    ckpt = save_checkpoint(model, root / "checkpoint")
    from engine.checkpoint import load_checkpoint

    model = load_checkpoint(ckpt)  # embeddings must carry the checkpoint's own hash
    emb = embed_store(model, ProteinStore.open(store_path), root / "embeddings", checkpoint=str(ckpt))
    return {"store": store_path, "checkpoint": ckpt, "embeddings": emb, "root": root}


def pca_project(vectors, ids=None, **_):
    """A 2-D PCA with engine.projection.project's signature: unit tests use it instead of UMAP (seconds faster)."""
    import engine.projection as P

    x, point_ids, mods = P._stack(vectors, ids)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return P.Projection((x @ vt[:2].T).astype(np.float32), point_ids, mods, {"pca": 2})
