"""The one synthetic world of the test suite: proteins, backbones and stores built through the engine's public API.

Three store shapes serve three kinds of test, all from the same generators (`backbone`, `AMINO`):
    make_family_store(path)        families of related sequences, train/test split: embedding, search, evaluation
    make_alignment_store(path, n)  learnable sequence<->modality pairings, train/valid split: models, training
    world                          (session) store + tiny-preset checkpoint + its embeddings: the explorer
Fixtures hand out the builders, so no test edits sys.path; `fast_projection` swaps UMAP for a 2-D PCA.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

AMINO = "ACDEFGHIKLMNPQRSTVWY"
THREEDI = AMINO  # Foldseek's 3Di alphabet uses the same 20 letters
FAMILIES = ("kinase", "globin", "protease", "lectin")


# ---- generators ---------------------------------------------------------------------------------
def backbone(length: int, rng: np.random.Generator, pitch: float | None = None, atom_noise: float = 0.8) -> np.ndarray:
    """A chain-like (L, 4, 3) N/CA/C/O backbone with ~3.8 A CA spacing: a random walk, or with `pitch` a
    helix-like trace of that pitch (one pitch per family gives a family its fold). N, C and O lie around CA
    with Gaussian `atom_noise` (A), or at fixed offsets when it is 0."""
    if pitch is None:
        steps = rng.normal(size=(length, 3))
        ca = np.cumsum(3.8 * steps / np.linalg.norm(steps, axis=1, keepdims=True), axis=0)
    else:
        t = np.arange(length, dtype=np.float32)
        ca = np.stack([2.3 * np.cos(t * pitch), 2.3 * np.sin(t * pitch), 1.5 * t], axis=1)
        ca += rng.normal(0, 0.2, ca.shape)
    if atom_noise:
        coords = np.stack([ca + rng.normal(scale=atom_noise, size=ca.shape) for _ in range(4)], axis=1)
        coords[:, 1] = ca
        return coords.astype(np.float32)
    offsets = np.array([[-1.2, 0.5, -0.4], [0, 0, 0], [1.2, 0.4, 0.5], [1.8, 1.4, 0.6]], dtype=np.float32)
    return (ca[:, None, :] + offsets[None, :, :]).astype(np.float32)


def family_records(n_families: int = 4, per_family: int = 8, length: int = 40, seed: int = 0) -> list:
    """Families of related sequences (15% of a family's residues changed per member) with every modality."""
    from engine.modality import Pocket, ProteinRecord

    rng = np.random.default_rng(seed)
    records = []
    for f in range(n_families):
        base = rng.choice(list(AMINO), size=length)
        for k in range(per_family):
            seq = base.copy()
            flip = rng.random(length) < 0.15
            seq[flip] = rng.choice(list(AMINO), size=int(flip.sum()))
            has_structure = k % 4 != 3
            coords = backbone(length, rng, atom_noise=0) if has_structure else None
            pockets = [Pocket(residues=sorted(rng.choice(length, size=8, replace=False).tolist()), ligand_code="NAD",
                              center=np.zeros(3, np.float32))] if has_structure and k % 2 == 0 else []
            records.append(ProteinRecord(
                id=f"fam{f}_p{k}", sequence="".join(seq), name=f"protein {f}.{k}",
                # two proteins per family share their text: the duplicate rule must count both as correct
                text=f"family {f} enzyme, isoform {k // 2}" if k % 3 != 2 else "",
                coords=coords, structure_tokens="".join(rng.choice(list(AMINO), size=length)),
                pockets=pockets, family=f"F{f}", ec=f"{f % 3 + 1}.1.1.{f}", organism="Synthetica",
                source="synthetic",
            ))
    return records


def write_family_store(path: Path, **kwargs) -> Path:
    """The family store at `path`; half of each family in test, half in train, one cluster per family."""
    from engine.data.store import write_store

    records = family_records(**kwargs)
    splits = {r.id: ("test" if int(r.id.rsplit("p", 1)[1]) % 2 == 0 else "train") for r in records}
    clusters = {r.id: int(r.id[3:].split("_")[0]) for r in records}
    return write_store(records, path, splits, clusters)


def alignment_records(n: int = 48, seed: int = 0, min_len: int = 20, max_len: int = 40) -> list:
    """`n` proteins whose 3Di strings are a fixed function of the sequence; structure, 3Di, pocket, text on most."""
    from engine.modality import Pocket, ProteinRecord

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        length = int(rng.integers(min_len, max_len))
        seq = "".join(rng.choice(list(AMINO), size=length))
        coords = backbone(length, rng) if i % 6 != 5 else None
        tokens = "".join(THREEDI[(AMINO.index(c) * 7 + 3) % 20] for c in seq) if i % 5 != 4 else None
        pockets = [Pocket(residues=sorted(rng.choice(length, size=8, replace=False).tolist()), ligand_code="HEM")]
        out.append(ProteinRecord(
            id=f"P{i:03d}", sequence=seq, name=f"protein {i}",
            text=f"protein {i} of family {i % 4} with motif {seq[:4]}" if i % 4 != 3 else "",
            coords=coords, structure_tokens=tokens, pockets=pockets if coords is not None and i % 3 != 2 else [],
            family=f"fam{i % 4}", source="synthetic",
        ))
    return out


def write_alignment_store(path, n: int = 48, seed: int = 0, valid_every: int = 4) -> Path:
    """The alignment store at `path`; every `valid_every`-th protein goes to the valid split."""
    from engine.data.store import write_store

    records = alignment_records(n, seed)
    splits = {r.id: ("valid" if i % valid_every == 1 else "train") for i, r in enumerate(records)}
    clusters = {r.id: i for i, r in enumerate(records)}
    return write_store(records, path, splits, clusters)


def world_records(n_per_family: int = 8, seed: int = 0) -> list:
    """Four named families sharing a motif and a fold each; one name carries HTML to test escaping."""
    from engine.modality import Pocket, ProteinRecord

    rng = np.random.default_rng(seed)
    aa = np.array(list(AMINO))
    records = []
    for f, fam in enumerate(FAMILIES):
        motif = "".join(rng.choice(aa, 50))
        for k in range(n_per_family):
            seq = list(motif)
            for pos in rng.choice(len(seq), 6, replace=False):
                seq[pos] = str(rng.choice(aa))
            seq = "".join(seq) + "".join(rng.choice(aa, int(rng.integers(0, 10))))
            coords = backbone(len(seq), rng, pitch=1.0 + 0.35 * f, atom_noise=0)
            pockets = []
            if k % 2 == 0:
                res = list(range(10, 18))
                lig = coords[res, 1].mean(0) + rng.normal(0, 0.5, (6, 3)).astype(np.float32)
                pockets = [Pocket(residues=res, ligand_code="NAD" if f % 2 == 0 else "HEM",
                                  ligand_name="NICOTINAMIDE-ADENINE-DINUCLEOTIDE" if f % 2 == 0 else "HEME",
                                  center=lig.mean(0), ligand_coords=lig, ligand_elements=["C"] * 6)]
            name = f"{fam} protein {k}" if k != 1 else f"<b>{fam}</b> & <script>alert(1)</script>"
            records.append(ProteinRecord(
                id=f"{fam[:3]}{k:02d}_A", sequence=seq, name=name,
                text=f"A {fam} family member number {k}; binds things." if k % 4 != 3 else "",
                coords=coords if k % 5 != 4 else None,
                structure_tokens="".join(rng.choice(list(THREEDI), len(seq))),
                pockets=pockets if k % 5 != 4 else [], family=fam,
                ec=f"{f + 1}.{k % 3 + 1}.1.{k}", organism="Homo sapiens" if k % 2 else "Mus musculus",
                source=f"synthetic:{fam}",
            ))
    return records


def build_world(root: Path, n_per_family: int = 8) -> dict[str, Path]:
    """Store, tiny-preset checkpoint and its embeddings under `root`, exactly as a real run writes them."""
    import torch

    from engine.checkpoint import load_checkpoint, save_checkpoint
    from engine.data.store import ProteinStore, write_store
    from engine.embed import embed_store
    from engine.model import OneProt
    from engine.presets import get_preset

    torch.manual_seed(0)
    root = Path(root)
    records = world_records(n_per_family)
    splits = {r.id: ("valid" if i % 5 == 0 else "train") for i, r in enumerate(records)}
    clusters = {r.id: i for i, r in enumerate(records)}
    store_path = write_store(records, root / "store", splits, clusters, {"built_by": "tests/conftest.py"})
    ckpt = save_checkpoint(OneProt(get_preset("tiny").model), root / "checkpoint")
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


# ---- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def make_backbone():
    """backbone(length, rng, pitch=None, atom_noise=0.8) -> (L, 4, 3) float32 N/CA/C/O coordinates."""
    return backbone


@pytest.fixture(scope="session")
def make_family_store():
    """write_family_store(path, **kwargs) -> store folder."""
    return write_family_store


@pytest.fixture(scope="session")
def make_family_records():
    """family_records(n_families=4, per_family=8, length=40, seed=0) -> [ProteinRecord]."""
    return family_records


@pytest.fixture(scope="session")
def make_alignment_store():
    """write_alignment_store(path, n=48, seed=0, valid_every=4) -> store folder."""
    return write_alignment_store


@pytest.fixture(scope="session")
def make_alignment_records():
    """alignment_records(n=48, seed=0, ...) -> [ProteinRecord]."""
    return alignment_records


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict:
    """The explorer's world: store, checkpoint and embeddings built once per test session."""
    import torch

    torch.set_num_threads(1)
    return build_world(tmp_path_factory.mktemp("explorer-world"))


@pytest.fixture()
def options(world):
    """AppOptions naming the world's store, checkpoint and embeddings."""
    from explorer.options import AppOptions

    return AppOptions(str(world["store"]), str(world["checkpoint"]), str(world["embeddings"]))


@pytest.fixture()
def fast_projection(monkeypatch):
    """Replace UMAP by a 2-D PCA in unit tests of views (UMAP itself runs in the served/browser tests)."""
    import engine.projection as P

    monkeypatch.setattr(P, "project", pca_project)
    return pca_project


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """CLI commands called in-process set torch's thread count (`--threads`); later tests must not inherit it
    (exact-resume checks compare bit for bit, which holds only at the thread count the test module chose)."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


class SequenceFamilies:
    """Random protein sequences and mutated copies: planted families for clustering and split tests."""

    letters = "ACDEFGHIKLMNPQRSTVWY"

    @staticmethod
    def random(rng, n: int) -> str:
        return "".join(rng.choice(SequenceFamilies.letters) for _ in range(n))

    @staticmethod
    def mutate(rng, seq: str, fraction: float) -> str:
        s = list(seq)
        for i in rng.sample(range(len(s)), int(fraction * len(s))):
            s[i] = rng.choice([a for a in SequenceFamilies.letters if a != s[i]])
        return "".join(s)

    def families(self, seed: int, n: int, max_length: int, max_mutation: float, members: int = 4) -> list[list[str]]:
        """n families: a random root (80..max_length residues) plus `members` copies 10..max_mutation mutated."""
        rng = random.Random(seed)
        fams = []
        for _ in range(n):
            root = self.random(rng, rng.randint(80, max_length))
            fams.append([root] + [self.mutate(rng, root, rng.uniform(0.1, max_mutation)) for _ in range(members)])
        return fams


@pytest.fixture(scope="session")
def seqgen() -> SequenceFamilies:
    """The planted-family sequence generator (clustering, splits, MMseqs2 tests)."""
    return SequenceFamilies()
