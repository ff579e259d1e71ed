"""Per-residue confidence (pLDDT) of predicted models (AlphaFold DB, ColabFold, ESMFold).

Where it comes from (mode "auto"): an mmCIF's `_ma_qa_metric_local` table (ModelCIF, as AlphaFold DB
writes it), else the CA B-factor of files that say they are predictions (AlphaFold DB PDB files
carry "ALPHAFOLD" in their TITLE). Mode "bfactor" reads the CA B-factor of every file (for model
sets without such a header); "off" reads none. Values on a 0-1 scale (ESMFold) are multiplied by
100. A value outside [0, 100] makes the file unusable (reported, skipped): such a column is not
pLDDT. Low-confidence residues are masked in 3Di with '#', SaProt's mark, which upstream OneProt
removes before tokenising; SaProt masks below 70.
"""

from __future__ import annotations

import re

import gemmi
import numpy as np

from engine.errors import OneProtError

PLDDT_MODES = ("auto", "bfactor", "off")
DEFAULT_MASK_BELOW = 70.0  # SaProt's threshold for '#'
_PREDICTION_WORDS = re.compile(r"ALPHAFOLD|COLABFOLD|ESMFOLD|OPENFOLD|PLDDT", re.I)


def _qa_table(block: "gemmi.cif.Block | None") -> dict[tuple[str, int], float]:
    if block is None:
        return {}
    t = block.find("_ma_qa_metric_local.", ["label_asym_id", "label_seq_id", "metric_value"])
    out = {}
    for row in t:
        try:
            out[(row[0], int(row[1]))] = float(row[2])
        except ValueError:
            continue  # '.' or '?' entries carry no value
    return out


def says_prediction(text: str) -> bool:
    """True when a PDB file's header lines name a structure predictor."""
    head = "\n".join(ln for ln in text.splitlines()[:60] if ln.startswith(("TITLE", "HEADER", "REMARK", "EXPDTA")))
    return bool(_PREDICTION_WORDS.search(head))


def chain_plddt(residues: list[gemmi.Residue], block, is_cif: bool, text: str, mode: str,
                where: str) -> np.ndarray | None:
    """pLDDT per residue (float32, NaN where a residue has none), or None when the file carries none."""
    if mode not in PLDDT_MODES:
        raise OneProtError(f"unknown pLDDT mode {mode!r}; choose one of: {', '.join(PLDDT_MODES)}", "--plddt")
    if mode == "off":
        return None
    vals = np.full(len(residues), np.nan, dtype=np.float32)
    table = _qa_table(block) if is_cif else {}
    if table:
        for i, r in enumerate(residues):
            v = table.get((r.subchain, r.label_seq)) if r.label_seq is not None else None
            if v is not None:
                vals[i] = v
    elif mode == "bfactor" or (not is_cif and says_prediction(text)):
        for i, r in enumerate(residues):
            a = r.find_atom("CA", "*")
            if a is not None:
                vals[i] = a.b_iso
    else:
        return None
    if not np.isfinite(vals).any():
        return None
    lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
    if lo < 0 or hi > 100:
        raise OneProtError(f"pLDDT out of range [0, 100] (min {lo:g}, max {hi:g}); not a predicted model? "
                           "(--plddt off reads no confidence)", where)
    if hi <= 1.0:
        vals *= 100.0  # ESMFold writes pLDDT as a fraction
    return vals


def mask_3di(tokens: str, plddt, below: float = DEFAULT_MASK_BELOW) -> str:
    """3Di string with '#' where pLDDT < `below` (SaProt's low-confidence mark); unchanged without pLDDT."""
    if plddt is None or not tokens or below <= 0:
        return tokens
    p = np.asarray(plddt, dtype=np.float32)
    if len(p) != len(tokens):
        raise OneProtError(f"pLDDT has {len(p)} values for {len(tokens)} 3Di letters", "plddt")
    low = p < below  # NaN (no value) compares False: kept
    return "".join("#" if m else c for c, m in zip(tokens, low))
