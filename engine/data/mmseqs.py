"""MMseqs2 (the `mmseqs` binary, Debian package `mmseqs2`) for clustering and pairwise search.

Sequences are written to a FASTA in a temporary folder with their list index as the name, so
results map back without parsing user ids. Pair criteria follow MMseqs2's own options:
identity = identical positions / alignment length (`--seq-id-mode 0`, MMseqs2's default and
upstream OneProt's) unless `definition="shorter"` (identical positions / shorter length, the own
clustering's definition); coverage = aligned fraction of BOTH sequences (`--cov-mode 0`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import OneProtError

DEFAULT_COVERAGE = 0.8  # MMseqs2's default -c
SEARCH_SENSITIVITY = 7.5  # MMseqs2's most sensitive preset
DEFINITIONS = ("alignment", "shorter")
_PAIR_COLUMNS = ("query", "target", "nident", "alnlen", "qlen", "tlen", "qstart", "qend", "tstart", "tend", "evalue")


def mmseqs_binary() -> str | None:
    """Path of the mmseqs binary ($ONEPROT_MMSEQS, else on PATH), or None; ONEPROT_MMSEQS=off disables it."""
    env = os.environ.get("ONEPROT_MMSEQS")
    if env == "off":
        return None
    if env:
        return env if Path(env).is_file() else None
    return shutil.which("mmseqs")


def mmseqs_version() -> str:
    """The binary's version string, e.g. '14-7e284+ds-1+b2'."""
    return _run(["version"]).strip()


def _run(args: list[str]) -> str:
    exe = mmseqs_binary()
    if exe is None:
        raise OneProtError("the mmseqs binary is not installed (Debian/Ubuntu: apt-get install mmseqs2)", "mmseqs")
    try:
        done = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise OneProtError(f"cannot run {exe}: {exc}", "mmseqs") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise OneProtError(f"`mmseqs {args[0]}` failed (exit {done.returncode}): {' | '.join(tail)}", "mmseqs")
    return done.stdout


def _write_fasta(seqs: Sequence[str], path: Path, offset: int = 0) -> None:
    with open(path, "w") as fh:
        for i, s in enumerate(seqs):
            fh.write(f">{i + offset}\n{s}\n")


def _threads(threads: int | None) -> str:
    return str(threads or os.cpu_count() or 1)


def cluster(seqs: Sequence[str], identity: float, coverage: float = DEFAULT_COVERAGE,
            threads: int | None = None) -> list[int]:
    """Cluster label per sequence from `mmseqs easy-cluster` (labels 0.. in order of first member)."""
    if not seqs:
        return []
    with tempfile.TemporaryDirectory(prefix="oneprot-mmseqs-") as tmp:
        t = Path(tmp)
        _write_fasta(seqs, t / "in.fasta")
        _run(["easy-cluster", str(t / "in.fasta"), str(t / "clu"), str(t / "work"), "--min-seq-id", str(identity),
              "-c", str(coverage), "--cov-mode", "0", "--seq-id-mode", "0", "--threads", _threads(threads), "-v", "1"])
        table = pd.read_csv(t / "clu_cluster.tsv", sep="\t", header=None, names=["rep", "member"], dtype=np.int64)
    rep = np.full(len(seqs), -1, dtype=np.int64)
    rep[table["member"].to_numpy()] = table["rep"].to_numpy()
    if (rep < 0).any():
        raise OneProtError(f"mmseqs left {int((rep < 0).sum())} sequences unclustered", "mmseqs")
    labels: dict[int, int] = {}
    return [labels.setdefault(int(r), len(labels)) for r in rep]


def search(queries: Sequence[str], targets: Sequence[str] | None, threads: int | None = None,
           sensitivity: float = SEARCH_SENSITIVITY, max_seqs: int | None = None,
           min_identity: float = 0.0, coverage: float = 0.0) -> pd.DataFrame:
    """Alignments of queries against targets (None: all-vs-all of the queries) by `mmseqs easy-search`.

    One row per (query, target) pair found, with 0-based list indices and the alignment's
    nident, alnlen, lengths, 1-based start/end and E-value. `max_seqs` caps prefilter hits per
    query (default: every target). `min_identity`/`coverage` are passed to mmseqs as a pre-cut
    (alignment-length identity, both-sided coverage); callers apply their own definition after.
    """
    n_t = len(queries) if targets is None else len(targets)
    if not queries or not n_t:
        return pd.DataFrame(columns=list(_PAIR_COLUMNS))
    with tempfile.TemporaryDirectory(prefix="oneprot-mmseqs-") as tmp:
        t = Path(tmp)
        _write_fasta(queries, t / "q.fasta")
        tfile = t / "q.fasta"
        if targets is not None:
            tfile = t / "t.fasta"
            _write_fasta(targets, tfile)
        _run(["easy-search", str(t / "q.fasta"), str(tfile), str(t / "hits.m8"), str(t / "work"),
              "-s", str(sensitivity), "--max-seqs", str(max_seqs or n_t), "-e", "10", "-a",
              "--min-seq-id", str(min_identity), "-c", str(coverage), "--cov-mode", "0", "--seq-id-mode", "0",
              "--threads", _threads(threads), "-v", "1", "--format-output", ",".join(_PAIR_COLUMNS)])
        if (t / "hits.m8").stat().st_size == 0:
            return pd.DataFrame(columns=list(_PAIR_COLUMNS))
        return pd.read_csv(t / "hits.m8", sep="\t", header=None, names=list(_PAIR_COLUMNS))


def pair_identity(pairs: pd.DataFrame, definition: str = "alignment") -> np.ndarray:
    """Identity of each pair: identical positions / alignment length, or / shorter sequence length."""
    if definition not in DEFINITIONS:
        raise OneProtError(f"unknown identity definition {definition!r}; choose {' or '.join(DEFINITIONS)}",
                           "identity_definition")
    n = pairs["nident"].to_numpy(dtype=np.float64)
    if definition == "alignment":
        return n / np.maximum(pairs["alnlen"].to_numpy(dtype=np.float64), 1.0)
    return n / np.maximum(np.minimum(pairs["qlen"], pairs["tlen"]).to_numpy(dtype=np.float64), 1.0)


def pair_coverage(pairs: pd.DataFrame) -> np.ndarray:
    """Aligned fraction of the less-covered of the two sequences (MMseqs2 --cov-mode 0)."""
    q = (pairs["qend"] - pairs["qstart"] + 1) / pairs["qlen"]
    t = (pairs["tend"] - pairs["tstart"] + 1) / pairs["tlen"]
    return np.minimum(q, t).to_numpy(dtype=np.float64)


def matching_pairs(pairs: pd.DataFrame, identity: float, coverage: float, definition: str = "alignment") -> pd.DataFrame:
    """The pairs at >= identity (by `definition`) and >= coverage of both sequences."""
    if pairs.empty:
        return pairs
    keep = (pair_identity(pairs, definition) >= identity - 1e-9) & (pair_coverage(pairs) >= coverage - 1e-9)
    return pairs[keep]
