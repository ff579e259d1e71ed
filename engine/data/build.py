"""Build a store from the files and folders a user points at.

Formats are detected by extension, then by content: PDB/mmCIF (.pdb/.ent/.cif, .gz),
FASTA, Swiss-Prot flat file, UniProt TSV, Pfam Stockholm (family labels), P2Rank
`*_predictions.csv` and fpocket `*_out/` folders (predicted pockets for structures of the same
name). Each file that yields nothing is reported with its reason (empty, binary, truncated, too
large, no protein chain, ...); a build with no usable file raises OneProtError.

Decisions stated here:
- CA-only chains are kept as sequence-only proteins (reported as a note);
- identical chains are all kept; identical sequences always share a cluster, hence a split;
- Stockholm members label proteins whose UniProt entry name or accession matches the member name
  (the part before '/'); members matching nothing are added as sequence-only proteins;
- parsed files are cached (engine.data.parse_cache) so a killed build resumes quickly; the build holds
  proteins without their per-residue arrays and writes the store `chunk_size` proteins at a time, reading
  the arrays back from the cache (engine.data.light_records), so memory does not hold every structure;
- with predict_pockets=True, structures without any pocket get fpocket-rs's best pocket.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data import parse_cache
from engine.data.fasta import is_fasta_path, parse_uniprot_header, read_fasta
from engine.data.light_records import DEFAULT_CHUNK, LightRecords
from engine.data.ligands import attach_ligand_files, find_ligand_files, is_ligand_path
from engine.data.plddt import DEFAULT_MASK_BELOW, mask_3di
from engine.data.parse_pool import default_workers, run_jobs
from engine.data.pocket_prediction import predict_pockets_cached
from engine.data.pockets import import_fpocket, import_p2rank
from engine.data.sequence import DEFAULT_MAX_LENGTH, clean_sequence, is_protein_like
from engine.data.splits import SplitRule, clusters_and_splits, protein_strata, split_description
from engine.data.stockholm import is_stockholm_path, read_stockholm
from engine.data.store import store_writer
from engine.data.structure import file_stem, is_structure_path, read_structure
from engine.data.text import compose_text
from engine.data.tokens3di import structure_tokens
from engine.data.uniprot import UniProtEntry, read_swissprot, read_uniprot_tsv
from engine.errors import OneProtError
from engine.modality import ProteinRecord

DEFAULT_MAX_FILE_MB = 100.0
MIN_FILES_FOR_POOL = 16
_BINARY_SNIFF = 4096


@dataclass
class BuildReport:
    """What happened to each input file."""

    used: dict[str, int] = field(default_factory=dict)  # file -> proteins it gave
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (file, note) for kept-but-degraded input
    ligands: dict[str, int] = field(default_factory=dict)  # ligand file -> pockets it gave

    def lines(self) -> list[str]:
        out = [f"used {len(self.used)} files ({sum(self.used.values())} proteins); skipped {len(self.skipped)}"]
        if self.ligands:
            out.append(f"paired {len(self.ligands)} ligand files ({sum(self.ligands.values())} ligand pockets)")
        out += [f"  skipped {f}: {why}" for f, why in self.skipped]
        out += [f"  note {f}: {n}" for f, n in self.notes]
        return out


def collect_files(inputs: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """(file, source label) under the given paths; folders are walked recursively, fpocket `*_out`
    folders kept whole. The label is 'input-name:relative/path', which stats group by input."""
    out: list[tuple[Path, str]] = []
    for item in inputs:
        p = Path(item).expanduser()
        if not p.exists():
            raise OneProtError("no such file or folder", str(p))
        if p.is_file() or p.name.endswith("_out"):
            out.append((p, f"{p.parent.name or p.name}:{p.name}"))
            continue
        for f in sorted(p.rglob("*")):
            rel = f.relative_to(p)
            if any(part.endswith("_out") for part in rel.parts[:-1]):
                continue  # inside an fpocket output folder: handled as one unit
            if (f.is_dir() and f.name.endswith("_out")) or (f.is_file() and not f.name.startswith(".")):
                out.append((f, f"{p.name}:{rel.as_posix()}"))
    return out


def _head(path: Path) -> bytes:
    import gzip

    with open(path, "rb") as fh:
        raw = fh.read(_BINARY_SNIFF)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read(_BINARY_SNIFF)
        except (OSError, EOFError):
            return b""  # truncated/garbled gzip: let the reader give the precise reason
    return raw


def detect_format(path: Path) -> str | None:
    """'structure', 'fasta', 'swissprot', 'uniprot_tsv', 'stockholm', 'p2rank', 'fpocket' or None."""
    if path.is_dir():
        return "fpocket" if list(path.glob("*_info.txt")) else None
    name = path.name.lower()
    if name.endswith("_predictions.csv"):
        return "p2rank"
    if is_structure_path(path):
        return "structure"
    if is_fasta_path(path):
        return "fasta"
    if is_stockholm_path(path):
        return "stockholm"
    head = _head(path)
    if b"\x00" in head:
        return None
    text = head.decode("utf-8", errors="replace").lstrip()
    if text.startswith(">"):
        return "fasta"
    if text.startswith("ID   "):
        return "swissprot"
    if text.startswith("# STOCKHOLM"):
        return "stockholm"
    if text.startswith("data_"):
        return "structure"
    if re.match(r"(HEADER|ATOM  |HETATM|REMARK|CRYST1|MODEL |COMPND|TITLE )", text):
        return "structure"
    first = text.splitlines()[0] if text else ""
    if "\t" in first and "Sequence" in first.split("\t"):
        return "uniprot_tsv"
    return None


def _entry_record(e: UniProtEntry, path: Path, max_length: int | None) -> ProteinRecord:
    seq = clean_sequence(e.sequence, where=f"{path}:{e.entry_name}", max_length=max_length)
    text = compose_text(name=e.name, organism=e.organism, gene=e.gene, ec=e.ec, function=e.function,
                        keywords=e.keywords, go=e.go)
    return ProteinRecord(id=e.accession or e.entry_name, sequence=seq, name=e.name, text=text, ec=e.ec,
                         organism=e.organism or None, source=str(path),
                         extra={"entry_name": e.entry_name, "accession": e.accession, "pfam": e.pfam, "pdb": e.pdb})


def parse_file(path: Path, fmt: str, max_length: int | None, plddt: str = "auto",
               plddt_mask: float = DEFAULT_MASK_BELOW, min_plddt: float | None = None,
               ) -> tuple[list[ProteinRecord], dict]:
    """Records from one file plus {'skipped': [...], 'notes': [...], 'families': ...}.

    Structures: pLDDT read per `plddt` mode; 3Di letters below `plddt_mask` become '#'; predicted
    chains with mean pLDDT < `min_plddt` are left out (reported).
    """
    result: dict = {"skipped": [], "notes": []}
    records: list[ProteinRecord] = []
    if fmt == "structure":
        sf = read_structure(path, max_length=max_length, plddt=plddt)
        if min_plddt is not None:
            keep = []
            for r in sf.records:
                conf = r.extra.get("plddt")
                mean = float(np.nanmean(conf)) if conf is not None and np.isfinite(conf).any() else None
                if mean is not None and mean < min_plddt:
                    sf.skipped.append((r.extra.get("chain", r.id), f"mean pLDDT {mean:.1f} < --min-plddt {min_plddt:g}"))
                else:
                    keep.append(r)
            sf.records = keep
        for r in sf.records:
            if r.coords is not None:
                r.structure_tokens = mask_3di(structure_tokens(r.coords, r.extra.get("cb")), r.extra.get("plddt"),
                                              plddt_mask)
            r.text = compose_text(name=r.name, organism=r.organism, gene=r.extra.get("gene"), ec=r.ec,
                                  title=r.extra.get("title"), structure_keywords=r.extra.get("keywords"))
        records = sf.records
        result["skipped"] = [f"chain {c}: {why}" for c, why in sf.skipped]
        result["notes"] = sf.notes
    elif fmt == "fasta":
        for e in read_fasta(path):
            try:
                seq = clean_sequence(e.sequence, where=f"{path}:{e.id}", max_length=max_length)
            except OneProtError as exc:
                result["skipped"].append(f"record {e.id}: {exc.message}")
                continue
            if not is_protein_like(seq):
                result["skipped"].append(f"record {e.id}: not a protein sequence (nucleotides or mostly X)")
                continue
            h = parse_uniprot_header(e.id, e.description)
            text = compose_text(name=h["name"], organism=h["organism"], gene=h["gene"])
            records.append(ProteinRecord(id=h["accession"] or e.id, sequence=seq, name=h["name"], text=text,
                                         organism=h["organism"], source=str(path),
                                         extra={"entry_name": h["entry_name"], "accession": h["accession"]}))
    elif fmt in ("swissprot", "uniprot_tsv"):
        reader = read_swissprot if fmt == "swissprot" else read_uniprot_tsv
        for e in reader(path):
            try:
                records.append(_entry_record(e, path, max_length))
            except OneProtError as exc:
                result["skipped"].append(f"entry {e.entry_name}: {exc.message}")
    elif fmt == "stockholm":
        result["families"] = [{"label": f.label, "members": f.members} for f in read_stockholm(path)]
    return records, result


def _label_families(records: list[ProteinRecord], families: list[tuple[str, dict]], max_length: int | None,
                    report: BuildReport, add_unmatched: bool = True) -> list[ProteinRecord]:
    by_name: dict[str, list[ProteinRecord]] = {}
    for r in records:
        for key in (r.id, r.extra.get("entry_name"), r.extra.get("accession")):
            if key:
                by_name.setdefault(key, []).append(r)
    added = []
    for path, fam in families:
        for member, residues in fam["members"].items():
            base = member.split("/")[0]
            hits = by_name.get(base) or by_name.get(base.split(".")[0])
            if hits:
                for r in hits:
                    r.family = r.family or fam["label"]
                continue
            if not add_unmatched:
                continue  # a shard adds no members: another shard may hold the protein they name
            try:
                seq = clean_sequence(residues, where=f"{path}:{member}", max_length=max_length)
            except OneProtError as exc:
                report.skipped.append((path, f"member {member}: {exc.message}"))
                continue
            added.append(ProteinRecord(id=member, sequence=seq, family=fam["label"], source=fam.get("source", path)))
    return added


def build_store(
    inputs: Iterable[str | Path],
    out: str | Path,
    max_file_mb: float = DEFAULT_MAX_FILE_MB,
    max_length: int | None = DEFAULT_MAX_LENGTH,
    split: SplitRule = SplitRule(),
    cache_dir: Path | None = None,
    log: Callable[[str], None] = lambda s: None,
    extra_records: list[ProteinRecord] | None = None,
    manifest_extra: dict | None = None,
    predict_pockets: bool = False,
    threads: int | None = None,
    ligand_dir: str | Path | None = None,
    plddt: str = "auto",
    plddt_mask: float = DEFAULT_MASK_BELOW,
    min_plddt: float | None = None,
    workers: int | None = None,
    shard: tuple[int, int] | None = None,
    progress: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[Path, BuildReport]:
    """Parse every input, cluster, split and write the store atomically. Returns (path, report).

    split: how splits are made (method "auto": MMseqs2 when the binary is present, else the own clustering).
    ligand_dir: a folder of `<stem>_ligand.sdf|.mol2` files for structures whose folder has none.
    plddt / plddt_mask / min_plddt: confidence of predicted models (see parse_file, engine.data.plddt).
    workers: parsing processes (default: the cores); progress: a tqdm bar on stderr.
    shard (I, N): only the files of shard I of N (by file stem, so a structure, its ligand and its
    P2Rank/fpocket output stay together), written unsplit for `oneprot data merge`. Stockholm files are
    read by every shard and label that shard's proteins; in shard mode members matching no protein are
    not added as sequence-only proteins (another shard may hold them).
    chunk_size: proteins whose arrays are in memory at once while the store is written.
    """
    inputs = list(inputs)
    report = BuildReport()
    light = LightRecords(_parse_job)
    for r in extra_records or []:
        light.add(r)
    records = light.records  # light for proteins read from files: their arrays and text stay in the parse cache
    families: list[tuple[str, dict]] = []
    predicted: list[tuple[str, Path]] = []
    files = collect_files(inputs)
    ligand_dir = Path(ligand_dir) if ligand_dir is not None else None
    if ligand_dir is not None and not ligand_dir.is_dir():
        raise OneProtError("no such folder", "--ligands")
    ligand_inputs = [str(f) for f, _ in collect_files([ligand_dir]) if is_ligand_path(f)] if ligand_dir else []
    paired: set[str] = set()
    jobs: list[tuple] = []  # (path, source, fmt, parse job)
    for path, source in files:
        where = str(path)
        if path.is_file():
            size = path.stat().st_size
            if size == 0:
                report.skipped.append((where, "empty file"))
                continue
            if size > max_file_mb * 1e6:
                report.skipped.append((where, f"too large ({size / 1e6:.1f} MB > --max-file-mb {max_file_mb:g})"))
                continue
        if path.is_file() and is_ligand_path(path):
            if in_shard(path, shard):
                ligand_inputs.append(where)  # read with the structure it pairs with
            continue
        try:
            fmt = detect_format(path)
        except OSError as exc:
            report.skipped.append((where, f"unreadable: {exc}"))
            continue
        if fmt is None:
            head = _head(path) if path.is_file() else b""
            why = "binary file, not a protein format" if b"\x00" in head else "unrecognised format"
            report.skipped.append((where, why))
            continue
        if fmt != "stockholm" and not in_shard(path, shard):
            continue  # another shard's file (Stockholm labels are read by every shard)
        if fmt in ("p2rank", "fpocket"):
            predicted.append((fmt, path))
            continue
        opts = {"fmt": fmt, "max_length": max_length}
        if fmt == "structure":
            opts.update(plddt=plddt, plddt_mask=plddt_mask, min_plddt=min_plddt)
        ligs = find_ligand_files(path, file_stem(path), ligand_dir) if fmt == "structure" else []
        if ligs:  # the cache entry holds their pockets, so it must change when they do
            opts["ligands"] = [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in ligs]
        key_path = parse_cache.cache_path(parse_cache.cache_key(path, opts), cache_dir)
        jobs.append((path, source, fmt, (path, fmt, max_length, plddt, plddt_mask, min_plddt, ligs, key_path)))
    todo = [j[3] for j in jobs if not j[3][-1].is_file()]
    # by default a pool only pays for its start-up (seconds of imports per worker) on many files
    n_workers = workers or (default_workers() if len(todo) >= MIN_FILES_FOR_POOL else 1)
    log(f"{len(jobs)} files to read, {len(jobs) - len(todo)} from the parse cache; {len(todo)} to parse "
        f"with {n_workers} worker(s)")
    errors = dict(zip([j[-1] for j in todo], run_jobs(_parse_job, todo, n_workers, progress=progress)))
    for i, (path, source, fmt, job) in enumerate(jobs):
        where = str(path)
        if errors.get(job[-1]):
            report.skipped.append((where, errors[job[-1]]))
            continue
        cached = parse_cache.load(job[-1], arrays=False)  # light records: arrays are read when the store is written
        if cached is None:  # damaged or unwritable cache: parse here
            err = _parse_job(job)
            cached = None if err else parse_cache.load(job[-1], arrays=False)
            if cached is None:
                report.skipped.append((where, err or "parse cache entry could not be written or read"))
                continue
        recs, result = cached
        for f, n in result.get("ligand_used", {}).items():
            report.ligands[f] = n
            paired.add(f)
        for f, why in result.get("ligand_skipped", []):
            report.skipped.append((f, why))
            paired.add(f)
        if "families" in result:
            families += [(where, {**f, "source": source}) for f in result["families"]]
            report.used[where] = sum(len(f["members"]) for f in result["families"])
            continue
        if not recs:
            reasons = "; ".join(result.get("skipped", [])[:3])
            report.skipped.append((where, f"no usable protein ({reasons or 'no protein chain or record'})"))
            continue
        report.used[where] = len(recs)
        for k, r in enumerate(recs):
            r.source = source
            light.add(r, (job, k))
        for s in result.get("skipped", []):
            report.notes.append((where, f"left out {s}"))
        for n in result.get("notes", []):
            report.notes.append((where, n))
    for f in dict.fromkeys(ligand_inputs):
        if f not in paired:
            report.skipped.append((f, "ligand file with no structure beside it (expected <stem>_protein.pdb or "
                                      "<stem>.pdb/.cif for <stem>_ligand.sdf|.mol2)"))
    for r in _label_families(records, families, max_length, report, add_unmatched=shard is None):
        light.add(r)
    _attach_predicted(light, predicted, report)
    if predict_pockets:
        _predict_missing_pockets(light, report, None if cache_dir is None else Path(cache_dir) / "pockets", log)
    if not records and shard is None:  # an empty shard is written empty: the job array goes on
        raise OneProtError(
            "no usable protein in the inputs; " + (f"{len(report.skipped)} files skipped: " +
            "; ".join(f"{Path(f).name}: {w}" for f, w in report.skipped[:8]) if report.skipped else "no files found"),
            "inputs",
        )
    _unique_ids(records)
    light.sizes.id_width = max((len(r.id) for r in records), default=1)  # ids may have grown a ~N
    if shard is not None:  # splits need every shard's sequences: `oneprot data merge` makes them
        clusters, splits = [-1] * len(records), ["train"] * len(records)
        how = split_description({"method": f"none: shard {shard[0]} of {shard[1]}, split by `oneprot data merge`"},
                                split.fractions, split.seed)
        manifest_extra = {**(manifest_extra or {}), "shard": list(shard)}
    else:
        strata = protein_strata([r.family for r in records], [light.has_structure(i) for i in range(len(records))])
        clusters, splits, how = clusters_and_splits([r.sequence for r in records], split, threads, log, strata=strata)
    manifest = {
        "split_method": how,
        "built_from": [str(Path(p)) for p in inputs],
        "skipped_files": len(report.skipped),
        **(manifest_extra or {}),
    }
    with store_writer(out, light.sizes, {r.id: s for r, s in zip(records, splits)},
                      {r.id: c for r, c in zip(records, clusters)}, manifest_extra=manifest,
                      allow_empty=shard is not None) as w:
        for chunk in light.chunks(chunk_size):
            w.add(chunk)
    return Path(out), report


def _attach_predicted(light: LightRecords, predicted: list[tuple[str, Path]], report: BuildReport) -> None:
    by_stem: dict[str, list[int]] = {}
    for i, r in enumerate(light.records):
        if r.extra.get("file"):
            by_stem.setdefault(file_stem(Path(r.extra["file"])), []).append(i)
    for fmt, path in predicted:
        if fmt == "p2rank":
            stem = path.name[: -len("_predictions.csv")]
            stem = file_stem(Path(stem)) if "." in stem else stem
        else:
            stem = path.name[: -len("_out")]
        idx = by_stem.get(stem, [])
        if not idx:
            report.skipped.append((str(path), f"no structure named {stem!r} among the inputs to attach pockets to"))
            continue
        targets = light.full(idx)  # residue numbers are needed to place the pockets
        try:
            found = import_p2rank(path, targets) if fmt == "p2rank" else import_fpocket(path, targets)
        except OneProtError as exc:
            report.skipped.append((str(path), exc.message))
            continue
        for i, r in zip(idx, targets):
            if r.coords is not None:
                light.records[i].pockets += found.get(r.id, [])
        report.used[str(path)] = sum(len(v) for v in found.values())


def _predict_missing_pockets(light: LightRecords, report: BuildReport, cache_dir: Path | None, log) -> None:
    """Best fpocket-rs pocket for each structure that has no pocket yet."""
    todo = [i for i, r in enumerate(light.records)
            if light.has_structure(i) and not light.has_pockets(i) and r.extra.get("file")]
    log(f"predicting pockets for {len(todo)} ligand-free structures with fpocket-rs")
    for i in todo:
        r = light.full([i])[0]  # its arrays for this one prediction
        try:
            light.records[i].pockets = predict_pockets_cached(r.extra["file"], r, top=1, cache_dir=cache_dir)
        except OneProtError as exc:
            report.notes.append((r.extra["file"], f"chain {r.extra.get('chain')}: no predicted pocket ({exc.message})"))
            if exc.where == "fpocket-rs":
                raise


def _parse_job(job: tuple) -> str | None:
    """Parse one file into its parse-cache entry (run in a worker); the error message, or None."""
    path, fmt, max_length, plddt, plddt_mask, min_plddt, ligs, key_path = job
    try:
        recs, result = parse_file(path, fmt, max_length, plddt, plddt_mask, min_plddt)
        if ligs:
            result.update(attach_ligand_files(path, recs, ligs))
    except OneProtError as exc:
        return exc.message
    except Exception as exc:  # a reader bug on one odd file must not end a build of thousands
        return f"unexpected {exc.__class__.__name__} while reading: {exc}"
    parse_cache.save(key_path, recs, result)
    return None


def in_shard(path: Path, shard: tuple[int, int] | None) -> bool:
    """Whether a file belongs to shard I of N: by a hash of its stem without _protein/_ligand/_predictions/_out."""
    if shard is None:
        return True
    import zlib

    name = path.name.lower().removesuffix(".gz")
    for end in ("_predictions.csv", "_out"):
        name = name.removesuffix(end)
    stem = name.split(".")[0]
    for end in ("_protein", "_ligand", "_pocket"):
        stem = stem.removesuffix(end)
    return zlib.crc32(stem.encode()) % shard[1] == shard[0]


def _unique_ids(records: list[ProteinRecord]) -> None:
    seen: dict[str, int] = {}
    for r in records:
        n = seen.get(r.id, 0)
        seen[r.id] = n + 1
        if n:
            r.id = f"{r.id}~{n + 1}"
