"""A build's records held light: per-residue arrays stay in the parse cache until the store is written.

`oneprot data build` keeps, for every protein, only what labelling, id renaming and clustering need
(sequence, 3Di, text, labels, pockets); coordinates, residue numbers, side chains and pLDDT are read
back from each file's parse-cache entry chunk by chunk while the store is written, so peak memory
holds one chunk's arrays rather than every structure's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.data import parse_cache
from engine.data.store import ArraySizes
from engine.errors import OneProtError
from engine.modality import ProteinRecord

DEFAULT_CHUNK = 1000  # proteins per chunk written to the store
HEAVY_EXTRA = ("cb", "side_chains", "plddt")


class LightRecords:
    """Records in build order; those from files are kept without arrays and re-read from the parse cache.

    A ref is (parse job, index of the record in its cache entry); the job's last item is the entry's path.
    `reparse(job)` rewrites an entry that vanished since it was first read (returns an error or None).
    """

    def __init__(self, reparse: Callable[[tuple], str | None]):
        self.records: list[ProteinRecord] = []
        self.refs: list[tuple[tuple, int] | None] = []
        self._coords: list[bool] = []
        self.sizes = ArraySizes()
        self._reparse = reparse

    def add(self, r: ProteinRecord, ref: tuple[tuple, int] | None = None) -> None:
        """Append a record; with a ref its arrays are dropped here and read back when needed."""
        self.sizes.add(r)
        self._coords.append(r.coords is not None)
        if ref is not None:
            r = dataclasses.replace(r, coords=None, residue_numbers=None,
                                    extra={k: v for k, v in r.extra.items() if k not in HEAVY_EXTRA},
                                    pockets=list(r.pockets))
        self.refs.append(ref)
        self.records.append(r)

    def has_structure(self, i: int) -> bool:
        """Whether record i has coordinates (in memory or in the parse cache)."""
        return self._coords[i]

    def full(self, idx: list[int]) -> list[ProteinRecord]:
        """Records idx with their arrays (copies sharing the light records' labels, ids and pockets)."""
        entries: dict[Path, list[ProteinRecord]] = {}
        out = []
        for i in idx:
            r, ref = self.records[i], self.refs[i]
            if ref is None:
                out.append(r)
                continue
            job, k = ref
            key = job[-1]
            if key not in entries:
                entries[key] = self._load(job)
            c = entries[key][k]
            out.append(dataclasses.replace(r, coords=c.coords, residue_numbers=c.residue_numbers,
                                           extra={**r.extra, **{h: c.extra.get(h) for h in HEAVY_EXTRA}}))
        return out

    def chunks(self, size: int = DEFAULT_CHUNK) -> Iterator[list[ProteinRecord]]:
        """The records with their arrays, `size` at a time, in build order."""
        size = max(1, int(size))
        for start in range(0, len(self.records), size):
            yield self.full(list(range(start, min(start + size, len(self.records)))))

    def _load(self, job: tuple) -> list[ProteinRecord]:
        got = parse_cache.load(job[-1])
        if got is None:  # removed or damaged since the first read: parse the file again
            err = self._reparse(job)
            got = None if err else parse_cache.load(job[-1])
        if got is None:
            raise OneProtError(f"parse cache entry lost during the build ({err or 'unreadable'}); run the build again",
                               str(job[0]))
        return got[0]
