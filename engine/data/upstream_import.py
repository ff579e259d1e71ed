"""`oneprot data import-upstream DIR --out STORE`: upstream OneProt's published data files -> a store.

The layouts are the ones upstream's loaders read (klemens-floege/oneprot, src/data/datasets/):
    seqstruc.h5               <id>/structure/0/A/residues/seq1 (one-letter sequence, bytes) and
                              <id>/structure/0/A/polypeptide/{atom_amino_id, type, xyz} (one row per atom)
    pockets_100_residues.h5   the same layout, holding the 100 residues nearest each P2Rank pocket centre
    {split}_seqstruc.csv      ids in the first column (no header); {split}_pocket.csv likewise
    {split}_text.csv          id, text (no header)
    {split}_saprot.txt        ids, one per line; their SaProt strings in the h5 given as --saprot-h5
                              (<id>/strucseq: residue letter + lowercase 3Di or '#', interleaved)
with split in train / val / test. Upstream's split of each id is kept (val -> valid); an id listed in
two splits is reported and takes the first in the order seqstruc, text, saprot, pocket. Residues
are matched to atoms as upstream does (atom_amino_id values, in sorted order, index the residues).
A pocket becomes the residues of the full chain whose CA lies within 0.01 A of a pocket CA.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.data.sequence import clean_sequence
from engine.data.store import write_store
from engine.errors import OneProtError
from engine.modality import Pocket, ProteinRecord

UPSTREAM_SPLITS = {"train": "train", "val": "valid", "test": "test"}
_BACKBONE = (b"N", b"CA", b"C", b"O")


def _ids_csv(path: Path, with_text: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            if row and row[0].strip():
                out[row[0].strip()] = row[1] if with_text and len(row) > 1 else ""
    return out


def _chain_arrays(h5, pid: str, where: str) -> tuple[str, np.ndarray] | None:
    """(sequence, (L, 4, 3) N/CA/C/O coords with NaN for missing atoms) of <pid>/structure/0/A, or None."""
    try:
        grp = h5[pid]["structure"]["0"]["A"]
        seq = grp["residues"]["seq1"][()]
        seq = seq.decode("utf-8") if isinstance(seq, bytes) else str(seq)
        poly = grp["polypeptide"]
        amino = np.asarray(poly["atom_amino_id"][()])
        names = np.asarray(poly["type"][()]).astype("S")
        xyz = np.asarray(poly["xyz"][()], dtype=np.float32).reshape(-1, 3)
    except KeyError:
        return None
    if not (len(amino) == len(names) == len(xyz)):
        raise OneProtError(f"{pid}: atom arrays differ in length", where)
    _, residue = np.unique(amino, return_inverse=True)
    if len(residue) and residue.max() >= len(seq):
        raise OneProtError(f"{pid}: atoms name {residue.max() + 1} residues, sequence has {len(seq)}", where)
    coords = np.full((len(seq), 4, 3), np.nan, dtype=np.float32)
    for j, atom in enumerate(_BACKBONE):
        m = names == atom
        coords[residue[m], j] = xyz[m]
    return seq, coords


def import_upstream(folder: str | os.PathLike, out: str | os.PathLike, saprot_h5: str | os.PathLike | None = None,
                    log: Callable[[str], None] = lambda s: None) -> tuple[Path, dict]:
    """Build a store from upstream's files in `folder`; returns (path, report counts and problems)."""
    import h5py

    folder = Path(folder)
    if not folder.is_dir():
        raise OneProtError("no such folder", str(folder))
    split_of: dict[str, str] = {}
    conflicts: list[str] = []
    texts: dict[str, str] = {}
    lists: dict[str, set[str]] = {"seqstruc": set(), "text": set(), "saprot": set(), "pocket": set()}
    for kind in lists:
        for up, ours in UPSTREAM_SPLITS.items():
            f = folder / (f"{up}_saprot.txt" if kind == "saprot" else f"{up}_{kind}.csv")
            if not f.is_file():
                continue
            ids = _ids_csv(f, with_text=kind == "text")
            if kind == "text":
                texts.update(ids)
            for pid in ids:
                lists[kind].add(pid)
                if split_of.setdefault(pid, ours) != ours:
                    conflicts.append(f"{pid}: {split_of[pid]} and {ours} ({f.name})")
    if not split_of:
        raise OneProtError("no upstream split files ({train,val,test}_{seqstruc,text,pocket}.csv or _saprot.txt)",
                           str(folder))
    problems: list[str] = [f"listed in two splits, kept the first: {c}" for c in conflicts]
    seqstruc = folder / "seqstruc.h5"
    pockets_h5 = folder / "pockets_100_residues.h5"
    saprot = Path(saprot_h5) if saprot_h5 else None
    if lists["saprot"] and saprot is None:
        problems.append("*_saprot.txt lists ids but no --saprot-h5 file was given: no 3Di imported")
    handles = {}
    try:
        for name, path in (("seqstruc", seqstruc), ("pocket", pockets_h5), ("saprot", saprot)):
            if path is not None and path.is_file():
                try:
                    handles[name] = h5py.File(path, "r")
                except OSError as exc:
                    raise OneProtError(f"cannot open HDF5: {exc}", str(path)) from None
        records = []
        for pid, split in split_of.items():
            seq, coords, tokens = None, None, None
            if "seqstruc" in handles:
                got = _chain_arrays(handles["seqstruc"], pid, str(seqstruc))
                if got is not None:
                    seq, coords = got
            if "saprot" in handles and pid in handles["saprot"]:
                raw = handles["saprot"][pid]["strucseq"][()]
                raw = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
                s_seq, s_tok = raw[0::2], raw[1::2]
                if seq is None:
                    seq = s_seq
                if len(s_tok) == len(seq):
                    tokens = s_tok.upper()  # the store's 3Di letters are upper case; '#' stays
                else:
                    problems.append(f"{pid}: SaProt string has {len(s_tok)} residues, sequence {len(seq)}; 3Di left out")
            if seq is None:
                problems.append(f"{pid}: in a split file but in no HDF5 file given; left out")
                continue
            try:
                seq = clean_sequence(seq, where=pid)
            except OneProtError as exc:
                problems.append(f"{pid}: {exc.message}; left out")
                continue
            if coords is not None and len(coords) != len(seq):
                coords = None
            rec = ProteinRecord(id=pid, sequence=seq, text=texts.get(pid, ""), coords=coords, structure_tokens=tokens,
                                source=f"upstream:{folder.name}", extra={"upstream_split": split})
            if coords is not None and "pocket" in handles:
                got = _chain_arrays(handles["pocket"], pid, str(pockets_h5))
                if got is not None:
                    ca, pca = coords[:, 1], got[1][:, 1]
                    ok = np.isfinite(pca).all(axis=1)
                    d = np.linalg.norm(ca[None, :, :] - pca[ok][:, None, :], axis=2) if ok.any() else np.zeros((0, 0))
                    hit = sorted({int(i) for i in np.nonzero(d < 0.01)[1]}) if d.size else []
                    if hit:
                        rec.pockets = [Pocket(residues=hit, source="p2rank (upstream pockets_100_residues)",
                                              center=np.nanmean(pca[ok], axis=0).astype(np.float32))]
                    else:
                        problems.append(f"{pid}: pocket residues match no residue of the full chain")
            records.append(rec)
    finally:
        for h in handles.values():
            h.close()
    if not records:
        raise OneProtError("no protein could be imported: " + "; ".join(problems[:5]), str(folder))
    splits = {r.id: r.extra["upstream_split"] for r in records}
    clusters: dict[str, int] = {}  # upstream's clusters are not in the files (-1); `data resplit` makes ours
    manifest = {"split_method": {"method": "upstream OneProt's split files, kept as published", "tool": "upstream",
                                 "identity": None, "identity_definition": "upstream: MMseqs2 at 50% (clusters not in the files)",
                                 "coverage": None},
                "built_from": [str(folder)] + ([str(saprot)] if saprot else []), "import_problems": len(problems)}
    path = write_store(records, out, splits, clusters, manifest_extra=manifest)
    log(f"imported {len(records)} proteins; {len(problems)} problems")
    counts = {s: sum(1 for v in splits.values() if v == s) for s in ("train", "valid", "test")}
    return Path(path), {"proteins": len(records), "splits": counts, "problems": problems}

