"""Predicted pockets for ligand-free structures: fpocket-rs (PyPI, a Rust port of fpocket) on the chain alone.

`predict_pockets` runs it on one protein-only chain (ligands and waters removed) in a child process with a
timeout and keeps the best-ranked pockets; `predict_pockets_cached` caches the result per file and chain.
fpocket-rs reports residue numbers without insertion codes; each maps to the chain residue with that number
and no insertion code, else the first residue with that number.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import gemmi
import numpy as np

from engine.data.gemmi_io import is_amino_acid, load_gemmi_structure
from engine.data.pockets import MIN_POCKET_RESIDUES
from engine.errors import OneProtError
from engine.files import write_text_atomic
from engine.modality import Pocket, ProteinRecord


@lru_cache(maxsize=2)
def _protein_only(path: str) -> gemmi.Structure:
    """First model without ligands, waters and hydrogens; cached because big files have many chains."""
    st = load_gemmi_structure(Path(path))
    st.remove_ligands_and_waters()
    st.remove_hydrogens()
    for m in range(len(st) - 1, 0, -1):
        del st[m]
    return st


def chain_pdb_text(path: str | Path, chain: str) -> str:
    """PDB text of one protein chain (first model, amino acids only, coordinates jittered by a seeded
    0.002 A so degenerate geometry cannot stall the predictor) for pocket predictors."""
    st = _protein_only(str(path)).clone()
    model = st[0]
    for i in range(len(model) - 1, -1, -1):
        if model[i].name != chain:
            del model[i]
    for ch in model:
        for j in range(len(ch) - 1, -1, -1):
            if not is_amino_acid(ch[j]):
                del ch[j]  # leftover solvent/ions of MD systems (e.g. TIP3, SOD) would swamp the predictor
        if len(ch.name) > 1:  # mmCIF chain ids like 'SZ0' do not fit PDB columns; one chain is left anyway
            ch.name = "A"
    # fpocket-rs 0.1 can loop forever on degenerate atom geometry (co-spherical points in the Delaunay
    # step); a seeded 0.002 A jitter, below the precision of PDB coordinates, breaks the degeneracy
    rng = np.random.default_rng(0)
    for ch in model:
        for res in ch:
            for a in res:
                dx, dy, dz = rng.normal(0.0, 0.002, 3)
                a.pos = gemmi.Position(a.pos.x + dx, a.pos.y + dy, a.pos.z + dz)
    return st.make_minimal_pdb()


PREDICT_TIMEOUT = 15.0  # seconds (a chain normally takes 0.3-3 s); fpocket-rs 0.1 can hang on a few chains


def _detect_worker(detect, pdb_text: str, out) -> None:
    try:
        out.put(detect(pdb_text))
    except Exception as exc:  # reported to the parent as text
        out.put(f"{exc.__class__.__name__}: {exc}")


def _detect_with_timeout(detect, pdb_text: str, timeout: float) -> dict:
    """Run the predictor in a child process so a hang can be stopped after `timeout` seconds."""
    import multiprocessing as mp
    import queue

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    out = ctx.Queue()
    proc = ctx.Process(target=_detect_worker, args=(detect, pdb_text, out), daemon=True)
    proc.start()
    try:
        result = out.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        proc.join()
        raise OneProtError(f"fpocket-rs gave no answer within {timeout:g} s", "fpocket-rs timeout") from None
    proc.join()
    if isinstance(result, str):
        raise OneProtError(f"fpocket-rs failed: {result}", "fpocket-rs run")
    return result


def predict_pockets(pdb_text: str, record: ProteinRecord, top: int = 1,
                    timeout: float | None = PREDICT_TIMEOUT) -> list[Pocket]:
    """Best `top` fpocket-rs pockets of a protein-only chain, as Pocket(source='fpocket-rs').

    The predictor runs in a child process stopped after `timeout` seconds (None: in-process).
    """
    try:
        import fpocket_rs
    except ImportError:
        raise OneProtError("pocket prediction needs the PyPI package fpocket-rs (pip install fpocket-rs)",
                           "fpocket-rs") from None
    result = _detect_with_timeout(fpocket_rs.detect_pockets, pdb_text, timeout) if timeout else \
        fpocket_rs.detect_pockets(pdb_text)
    numbers = record.residue_numbers or []
    index: dict[str, int] = {}
    for i, num in enumerate(numbers):
        plain = re.match(r"-?\d+", num)
        key = plain.group(0) if plain else num
        if key not in index or num == key:  # prefer the residue without insertion code
            index[key] = i
    out = []
    for p in sorted(result.get("pockets", []), key=lambda q: q.get("rank", 0))[:top]:
        residues = sorted({index[str(num)] for _, num in p.get("residues", []) if str(num) in index})
        if len(residues) < MIN_POCKET_RESIDUES:
            continue
        spheres = np.asarray([s[:3] for s in p.get("alpha_spheres", [])], dtype=np.float32)
        out.append(Pocket(residues=residues, source="fpocket-rs", score=float(p.get("score", 0.0)),
                          center=spheres.mean(axis=0) if len(spheres) else None))
    return out


def predict_pockets_cached(path: str | Path, record: ProteinRecord, top: int = 1,
                           cache_dir: Path | None = None) -> list[Pocket]:
    """predict_pockets on one chain of a file, cached as JSON under <cache>/pockets/ (keyed by file + chain)."""
    import hashlib
    import json

    from engine.paths import CACHE_DIR

    path = Path(path)
    st = path.stat()
    key = hashlib.sha256(json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns, record.extra.get("chain"),
                                     record.sequence, top, 2]).encode()).hexdigest()[:32]
    f = Path(cache_dir or CACHE_DIR / "pockets") / f"{key}.json"
    if f.is_file():
        try:
            rows = json.loads(f.read_text())
            return [Pocket(residues=r["residues"], source=r["source"], score=r["score"],
                           center=None if r["center"] is None else np.asarray(r["center"], np.float32)) for r in rows]
        except (ValueError, KeyError):
            pass  # damaged entry: predict again
    try:
        pockets = predict_pockets(chain_pdb_text(path, record.extra.get("chain", "")), record, top=top)
    except OneProtError as exc:
        if exc.where != "fpocket-rs timeout":
            raise
        pockets = []  # remembered as "no pocket", so a rebuild does not wait on the same chain again
    f.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(f, json.dumps([{"residues": p.residues, "source": p.source, "score": p.score,
                                      "center": None if p.center is None else [float(x) for x in p.center]}
                                     for p in pockets]))
    return pockets
