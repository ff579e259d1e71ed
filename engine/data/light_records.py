"""A build's records held light: per-residue arrays stay in the parse cache until the store is written.

`oneprot data build` keeps, for every protein read from a file, only what labelling, id renaming,
clustering and pocket attachment need (id, sequence, family, source, file, chain, entry name,
accession) and the pockets the build adds; everything else (coordinates, residue numbers, side
chains, pLDDT, 3Di, text, ligand pockets) is read back from the file's parse-cache entry chunk by chunk
while the store is written, so peak memory holds one chunk's records rather than every protein's.
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
KEPT_EXTRA = ("file", "chain", "entry_name", "accession")  # what the build looks up while records are light


class LightRecords:
    """Records in build order; those from files are kept without arrays and re-read from the parse cache.

    A ref is (parse job, index of the record in its cache entry); the job's last item is the entry's path.
    `reparse(job)` rewrites an entry that vanished since it was first read (returns an error or None).
    """

    def __init__(self, reparse: Callable[[tuple], str | None]):
        self.records: list[ProteinRecord] = []
        self.refs: list[tuple[tuple, int] | None] = []
        self._coords: list[bool] = []
        self._cached_pockets: list[int] = []
        self.sizes = ArraySizes()
        self._reparse = reparse

    def add(self, r: ProteinRecord, ref: tuple[tuple, int] | None = None) -> None:
        """Append a record; with a ref only the light fields are kept (the rest is read back when needed)."""
        self.sizes.add(r)
        self._coords.append(r.coords is not None)
        self._cached_pockets.append(len(r.pockets) if ref is not None else 0)
        if ref is not None:
            r = ProteinRecord(id=r.id, sequence=r.sequence, family=r.family, source=r.source,
                              extra={k: r.extra[k] for k in KEPT_EXTRA if r.extra.get(k) is not None})
        self.refs.append(ref)
        self.records.append(r)

    def has_structure(self, i: int) -> bool:
        """Whether record i has coordinates (in memory or in the parse cache)."""
        return self._coords[i]

    def has_pockets(self, i: int) -> bool:
        """Whether record i has any pocket (from its file or added by the build)."""
        return bool(self._cached_pockets[i] or self.records[i].pockets)

    def full(self, idx: list[int]) -> list[ProteinRecord]:
        """Records idx whole: the parse-cache record with the build's id, source, family and added pockets."""
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
            out.append(dataclasses.replace(c, id=r.id, source=r.source, family=r.family,
                                           pockets=list(c.pockets) + r.pockets))
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
