"""`oneprot search`: nearest neighbours of one query in any target modality of an embeddings folder."""

from __future__ import annotations

import argparse
import json

from engine.errors import OneProtError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from engine.cli import add_embeddings_option

    p.add_argument("--checkpoint", help="checkpoint folder or 'demo' (must be the one that made --embeddings; "
                   "default: 'demo' with the demo embeddings; not needed for --query-id)")
    add_embeddings_option(p)
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--query-sequence", metavar="SEQ", help="amino-acid sequence")
    q.add_argument("--query-fasta", metavar="FILE", help="FASTA file (first record)")
    q.add_argument("--query-structure", metavar="FILE", help="PDB/mmCIF file (first protein chain or --chain)")
    q.add_argument("--query-text", metavar="TEXT", help="free text")
    q.add_argument("--query-id", metavar="ID", help="a protein already in --embeddings")
    p.add_argument("--query-modality", help="read --query-structure as structure|pocket|structure_tokens; "
                   "which stored vector --query-id uses (default sequence)")
    p.add_argument("--chain", help="chain of --query-structure")
    p.add_argument("--target", default="sequence", help="modality to search in")
    p.add_argument("-k", type=int, default=10, help="number of hits")
    p.add_argument("--tm-align", action="store_true",
                   help="also TM-align each hit with a structure in --data onto a structure or pocket query "
                        "(tm_score normalised by the query, tm_rmsd, tm_aligned; ~0.1 s a 300-residue hit)")
    p.add_argument("--data", default=None, help="the store of --embeddings, for --tm-align and --query-id's backbone "
                   "(default: 'demo' with the demo embeddings)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import read_meta
    from engine.embed import EmbeddingSet
    from engine.query import parse_query, run_query

    eset = EmbeddingSet.open(args.embeddings)
    eset.require(args.target)
    checkpoint = args.checkpoint or ("demo" if args.embeddings == "demo" else None)
    available = None
    if checkpoint is not None:
        # refuse a mismatched pair before paying for loading the weights
        meta = read_meta(checkpoint)
        eset.check_model(meta.get("model_hash", "?"), meta.get("dim", -1), where="--embeddings / --checkpoint")
        available = list(meta.get("modalities", [])) or None
    elif args.query_id is None:
        raise OneProtError("give --checkpoint (the one that made --embeddings) to embed this query", "--checkpoint")
    query = parse_query(sequence=args.query_sequence, fasta=args.query_fasta, structure=args.query_structure,
                        text=args.query_text, protein_id=args.query_id, as_modality=args.query_modality,
                        chain=args.chain, available=available if args.query_id is None else None)
    model = None
    if query.protein_id is None:
        from engine.checkpoint import load_checkpoint

        model = load_checkpoint(checkpoint)
    hits = [h.to_dict() for h in run_query(eset, query, args.target, args.k, model)]
    if args.tm_align:
        _add_tm_scores(args, query, hits)
    out = {"query": {"modality": query.modality, "label": query.label, "id": query.protein_id},
           "target": args.target, "k": args.k, "significance": query.summary, "warnings": query.warnings,
           "hits": hits}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"query: {query.label} ({query.modality}) -> {args.target}")
        for w in query.warnings or []:
            print(f"warning: {w}")
        if query.summary and query.summary.get("note"):
            print(query.summary["note"])
        for h in hits:
            sig = f"E={h['evalue']:<8.2g}{'*' if h['significant'] else ' '}" if "evalue" in h else ""
            tm = f"TM={h['tm_score']:.2f} " if "tm_score" in h else ("TM=-    " if args.tm_align else "")
            print(f"{h['rank']:>3}  {h['score']:.4f}  {sig} {tm}{h['id']:<20} {h.get('family') or '-':<14} {h.get('name') or ''}")
    if not hits:
        raise OneProtError("no hits (empty target set?)", "--target")
    return 0


def _add_tm_scores(args: argparse.Namespace, query, hits: list[dict]) -> None:
    """tm_score / tm_rmsd / tm_aligned on each hit dict whose protein has a structure (engine.evaluate.tmscore)."""
    from engine.data.store import ProteinStore
    from engine.evaluate.tmscore import fit_hits_on_query
    from engine.query import read_structure_query

    data = args.data or ("demo" if args.embeddings == "demo" else None)
    if data is None:
        raise OneProtError("--tm-align needs the store the embeddings were made from", "--data")
    store = ProteinStore.open(data)
    if hasattr(query.item, "coords"):  # a structure or pocket read from --query-structure: its whole chain
        backbone = query.item
    elif args.query_structure:  # read as 3Di letters: the file once more, for its backbone
        backbone = read_structure_query(args.query_structure, "structure", args.chain)[1]
    elif args.query_id and args.query_id in store and store.coords(args.query_id) is not None:
        backbone = store.record(args.query_id)
    else:
        raise OneProtError("--tm-align needs a query with a structure (--query-structure, or --query-id of a "
                           "protein with one in --data)", "--tm-align")
    fits = fit_hits_on_query(backbone, store, [h["id"] for h in hits])
    for h in hits:
        fit = fits.get(h["id"])
        if fit is not None:
            h.update(tm_score=round(fit.tm_target, 4), tm_rmsd=round(fit.rmsd, 3), tm_aligned=fit.aligned)
