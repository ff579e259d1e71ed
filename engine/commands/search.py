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
            print(f"{h['rank']:>3}  {h['score']:.4f}  {sig} {h['id']:<20} {h.get('family') or '-':<14} {h.get('name') or ''}")
    if not hits:
        raise OneProtError("no hits (empty target set?)", "--target")
    return 0
