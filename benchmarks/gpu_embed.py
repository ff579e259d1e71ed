"""ESM-2 embedding throughput on one GPU: fair-esm fp32, fair-esm bf16 autocast, transformers SDPA bf16
and the one embedding path (OneProt.pooled: the ESM encoder's packed method, engine/encoders/packed_esm.py),
same network and inputs, one process.

    python benchmarks/gpu_embed.py            # H100/H200: 8M, 35M, 150M, 650M; < 8 minutes
    python benchmarks/gpu_embed.py --quick    # CPU: small configs, few sequences, proves the pipeline

Random weights with the released ESM-2 hyper-parameters (no download), in a OneProt sequence encoder whose
fair-esm ESM2 module the fair-esm baselines run; ours runs the whole OneProt cast to bf16 (fp32 on CPU). 3,000 sequences, lengths
log-normal around 300 (sigma 0.6, 20..1022 residues), seeded. Every method goes from strings to pooled
(N, D) vectors on the host: baselines tokenise with their own tokenisers (timed once per tokeniser and
added to each baseline's time; "model-only" columns leave it out) and run length-sorted padded batches
(`--baseline-budget` padded tokens, more generous than extract.py's 4,096); ours is timed end to end.
Our vectors are checked against the fair-esm fp32 vectors (cosine >= 0.999 per protein). The FLOP
floor (BENCHMARKS.md) is tokens x FLOPs/token / the bf16 matmul ceiling measured in the same run.
Needs torch (CUDA), fair-esm and transformers; on a machine without fair-esm, install its wheel
(pure Python, `pip download --no-deps fair-esm==2.0.0`) with PYTHONPATH set to the repo root.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from engine.encoders.packed_esm import PackedOptions
from engine.files import write_text_atomic
from engine.token_batching import token_budget_batches

# released ESM-2 hyper-parameters: layers, embed_dim, heads
SIZES = {"8M": (6, 320, 20), "35M": (12, 480, 20), "150M": (30, 640, 20), "650M": (33, 1280, 20)}
# the project's small from-scratch configs (demo sequence encoder and 3Di-token encoder scale)
SMALL = {"small-4x128": (4, 128, 8), "small-2x64": (2, 64, 4)}
AMINO = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
RESULTS = Path(__file__).resolve().parent / "results"


def default_budget(dim: int, device: str) -> int:
    """Tokens per packed batch: 8,192 on CPU; on a GPU, 65,536 from ESM-2 650M's width up, else 131,072."""
    if not device.startswith("cuda"):
        return 8192
    return 65536 if dim >= 1024 else 131072


def make_sequences(n: int, seed: int, median: int = 300, sigma: float = 0.6,
                   max_len: int = 1022) -> list[str]:
    """`n` random protein strings, lengths log-normal around `median`, clipped to 20..max_len."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(median), sigma, n).astype(int), 20, max_len)
    return ["".join(rng.choice(AMINO, size=k)) for k in lengths]


def build_oneprot(layers: int, dim: int, heads: int, device: str, modality: str = "sequence", seed: int = 0):
    """A OneProt whose `modality` ESM encoder (mean pooling, random weights) has these sizes, built on `device`.

    A 3Di-token encoder needs the sequence anchor beside it: a one-layer one, not timed."""
    from engine.model import ModelConfig, OneProt

    torch.manual_seed(seed)
    enc = {modality: {"layers": layers, "dim": dim, "heads": heads, "pooling": "mean", "max_length": 1022}}
    if modality != "sequence":
        enc["sequence"] = {"layers": 1, "dim": 16, "heads": 2}
    with torch.device(device):
        model = OneProt(ModelConfig(encoders=enc, dim=128))
    return model.eval()


def build_transformers(layers: int, dim: int, heads: int, alphabet, device: str, dtype):
    """transformers EsmModel with the same sizes, SDPA attention, random init."""
    from transformers import EsmConfig, EsmModel

    config = EsmConfig(vocab_size=len(alphabet), hidden_size=dim, num_hidden_layers=layers,
                       num_attention_heads=heads, intermediate_size=4 * dim,
                       position_embedding_type="rotary", token_dropout=True,
                       emb_layer_norm_before=False, pad_token_id=alphabet.padding_idx,
                       mask_token_id=alphabet.mask_idx, max_position_embeddings=1026,
                       layer_norm_eps=1e-5, hidden_dropout_prob=0.0,
                       attention_probs_dropout_prob=0.0)
    config._attn_implementation = "sdpa"
    with torch.device(device):
        model = EsmModel(config, add_pooling_layer=False)
    return model.to(dtype).eval()


def transformers_tokenizer(alphabet):
    """EsmTokenizer with fair-esm's vocabulary (what from_pretrained would give, offline)."""
    from transformers import EsmTokenizer

    folder = tempfile.mkdtemp()
    vocab = os.path.join(folder, "vocab.txt")
    Path(vocab).write_text("\n".join(alphabet.all_toks))
    return EsmTokenizer(vocab)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def tokenise_fair_esm(alphabet, seqs: list[str], batches) -> tuple[list, float]:
    """fair-esm BatchConverter per padded batch; returns (tokens per batch, seconds)."""
    convert = alphabet.get_batch_converter()
    start = time.perf_counter()
    out = [convert([(str(i), seqs[i]) for i in b])[2] for b in batches]
    return out, time.perf_counter() - start


def tokenise_transformers(tokenizer, seqs: list[str], batches) -> tuple[list, float]:
    start = time.perf_counter()
    out = [tokenizer([seqs[i] for i in b], padding=True, return_tensors="pt") for b in batches]
    return out, time.perf_counter() - start


def _masked_mean(rep: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean over residues: `real` marks non-pad tokens; BOS and the last real token (EOS) dropped."""
    res = real.clone()
    res[:, 0] = False
    last = real.sum(1) - 1
    res[torch.arange(len(res), device=res.device), last] = False
    w = res.to(torch.float32)[..., None]
    return (rep.float() * w).sum(1) / w.sum(1).clamp_min(1)


@torch.inference_mode()
def run_fair_esm(model, alphabet, token_batches, batches, n: int, device: str, autocast: bool):
    """extract.py-style loop: per batch copy, forward, pool, copy back to the host."""
    out = torch.zeros(n, model.embed_dim)
    last = len(model.layers)
    for tokens, idx in zip(token_batches, batches):
        tokens = tokens.to(device)
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=autocast):
            rep = model(tokens, repr_layers=[last])["representations"][last]
        out[torch.as_tensor(idx)] = _masked_mean(rep, tokens != alphabet.padding_idx).cpu()
    return out


@torch.inference_mode()
def run_transformers(model, encoded, batches, n: int, dim: int, device: str):
    out = torch.zeros(n, dim)
    for enc, idx in zip(encoded, batches):
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        rep = model(input_ids=ids, attention_mask=mask).last_hidden_state
        out[torch.as_tensor(idx)] = _masked_mean(rep, mask.bool()).cpu()
    return out


def timed(fn, device: str):
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return result, time.perf_counter() - start


def matmul_ceiling(device: str) -> tuple[float, str]:
    """Best measured matmul TFLOP/s: bf16 8192^3 on CUDA, fp32 512^3 on CPU (our CPU dtype)."""
    if device.startswith("cuda"):
        size, dtype, reps = 8192, torch.bfloat16, 20
    else:
        size, dtype, reps = 512, torch.float32, 5
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = 0.0
    for _ in range(3):
        a @ b
        _, secs = timed(lambda: [a @ b for _ in range(reps)], device)
        best = max(best, 2 * size**3 * reps / secs / 1e12)
    return best, str(dtype).replace("torch.", "")


def flop_floor(lengths: np.ndarray, layers: int, dim: int, tflops: float) -> float:
    """Tokens/s if every forward FLOP ran at the measured ceiling (BENCHMARKS.md formula)."""
    tokens = lengths.astype(np.float64)
    total = float((tokens * (24 * layers * dim**2 + 4 * layers * tokens * dim)).sum())
    return tokens.sum() / (total / (tflops * 1e12))


def min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.float(), b.float()).min())


def card_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    return "cpu-quick"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def bench_size(name, arch, seqs, args, shared, rows, start_time):
    """All methods for one model size; appends result rows."""
    layers, dim, heads = arch
    device, n = args.device, len(seqs)
    tokens = shared["tokens"]
    floor = flop_floor(shared["lengths"], layers, dim, shared["tflops"])
    budget_left = lambda: args.time_budget - (time.perf_counter() - start_time)  # noqa: E731
    oneprot = build_oneprot(layers, dim, heads, device)
    model = oneprot.encoders["sequence"].esm  # the baselines run the same fair-esm module
    alphabet = model.alphabet
    results = {}

    def record(method, secs, model_secs, vectors, note=""):
        reference = results.get("fair-esm fp32")
        cos = min_cosine(vectors, reference["vectors"]) if reference is not None else 1.0
        results[method] = dict(secs=secs, model_secs=model_secs, vectors=vectors, cos=cos, note=note)
        print(f"  {name:>11} {method:<24} {tokens / secs:>12,.0f} tok/s  min cos {cos:.5f} {note}",
              flush=True)

    warm = shared["warm"]  # a few batches run once before timing (kernels, allocator, autotune)
    # 1. fair-esm fp32: the reference vectors
    run_fair_esm(model, alphabet, shared["fair_tokens"][:warm], shared["padded"][:warm], n, device,
                 False)
    vec, secs = timed(lambda: run_fair_esm(model, alphabet, shared["fair_tokens"], shared["padded"],
                                           n, device, False), device)
    record("fair-esm fp32", secs + shared["fair_tok_s"], secs, vec)
    if not args.skip_fair_bf16 and budget_left() > 0:
        run_fair_esm(model, alphabet, shared["fair_tokens"][:warm], shared["padded"][:warm], n,
                     device, True)
        vec, secs = timed(lambda: run_fair_esm(model, alphabet, shared["fair_tokens"],
                                               shared["padded"], n, device, True), device)
        record("fair-esm bf16 autocast", secs + shared["fair_tok_s"], secs, vec)
    # 2. ours: OneProt.pooled, the model cast to bf16 on GPU (fp32 on CPU), after the fp32 runs
    oneprot.to(torch.bfloat16 if device.startswith("cuda") else torch.float32)
    budget = args.token_budget or default_budget(dim, device)

    def ours(options: PackedOptions, items=seqs, token_budget=budget):
        return torch.from_numpy(oneprot.pooled("sequence", items, token_budget, options))

    for attention in ("auto", "padded"):  # padded attention only if the varlen kernel fails here
        try:
            options = PackedOptions(attention=attention)
            ours(options, seqs[:64])
            vec, secs = timed(lambda: ours(options), device)
            record("ours (packed)" if attention == "auto" else "ours (padded attention)",
                   secs, secs, vec)
            break
        except Exception as error:  # noqa: BLE001 - report it, then try the fallback
            print(f"  ours with attention={attention} failed: {type(error).__name__}: {error}"[:400],
                  flush=True)
    if args.variants and "ours (packed)" in results:  # same path, one option changed each
        for label, options, variant_budget in (("ours, unfused GELU", PackedOptions(fused_gelu=False), budget),
                                               ("ours, 2x token budget", PackedOptions(), 2 * budget)):
            ours(options, seqs[:64], variant_budget)
            vec, secs = timed(lambda: ours(options, token_budget=variant_budget), device)
            record(label, secs, secs, vec)
    for flag, label, options, what in (
            (args.compile, "ours + torch.compile", PackedOptions(compile=True), "compile"),
            (args.cuda_graphs, "ours + CUDA graphs", PackedOptions(cuda_graphs=True), "capture")):
        if flag and budget_left() > 120:
            try:
                _, csecs = timed(lambda: ours(options, seqs[:512]), device)
                vec, secs = timed(lambda: ours(options), device)
                record(label, secs, secs, vec, f"({what}+warm-up {csecs:.0f} s)")
            except Exception as error:  # noqa: BLE001 - report and keep the uncompiled result
                print(f"  {label} failed: {type(error).__name__}: {error}"[:300], flush=True)
    del model, oneprot
    gc.collect()
    # 3. transformers EsmModel bf16 + SDPA
    if budget_left() > 0:
        hf = build_transformers(layers, dim, heads, alphabet, device, torch.bfloat16)
        run_transformers(hf, shared["hf_tokens"][:warm], shared["padded"][:warm], n, dim, device)
        vec, secs = timed(lambda: run_transformers(hf, shared["hf_tokens"], shared["padded"], n,
                                                   dim, device), device)
        results["transformers SDPA bf16"] = dict(secs=secs + shared["hf_tok_s"], model_secs=secs,
                                                 vectors=None, cos=float("nan"),
                                                 note="(own random weights)")
        print(f"  {name:>11} {'transformers SDPA bf16':<24} "
              f"{tokens / (secs + shared['hf_tok_s']):>12,.0f} tok/s", flush=True)
        del hf
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    ours = min((r for k, r in results.items() if k.startswith("ours")), key=lambda r: r["secs"])
    for method, r in results.items():
        rows.append(dict(model=name, method=method, tok_s=tokens / r["secs"],
                         model_tok_s=tokens / r["model_secs"], ours_x=r["secs"] / ours["secs"],
                         floor=tokens / r["secs"] / floor, cos=r["cos"], note=r["note"]))
    return ours, results, floor


def verdicts(name, ours, results, floor, tokens, gpu: bool = True):
    """The issue's floors for this size, as printable lines (the speed floors are GPU floors)."""
    best_base = min(r["secs"] for k, r in results.items() if not k.startswith("ours"))
    lines = [f"{name}: ours {tokens / ours['secs']:,.0f} tok/s = {best_base / ours['secs']:.2f}x the best "
             f"baseline, {tokens / ours['secs'] / floor:.1%} of the FLOP floor "
             f"({floor:,.0f} tok/s), min cosine vs fp32 {ours['cos']:.5f}"]
    if gpu and name == "650M":
        hf = results.get("transformers SDPA bf16")
        ok = tokens / ours["secs"] >= 300_000 and hf is not None and hf["secs"] / ours["secs"] >= 4.5
        lines.append(f"  floor 650M >= 300k tok/s and >= 4.5x transformers: {'PASS' if ok else 'FAIL'}")
    if gpu and name in ("8M", "35M"):
        ok = best_base / ours["secs"] >= 5
        lines.append(f"  floor {name} >= 5x best baseline: {'PASS' if ok else 'FAIL'}")
    ok = ours["cos"] >= 0.999
    lines.append(f"  cosine >= 0.999 per protein vs fp32: {'PASS' if ok else 'FAIL'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU, small configs, few sequences")
    parser.add_argument("--sizes", default=None, help="comma list from " + ",".join(SIZES | SMALL))
    parser.add_argument("--n", type=int, default=None, help="number of sequences (3000; quick 48)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--token-budget", type=int, default=None, help="ours (default per size)")
    parser.add_argument("--baseline-budget", type=int, default=None,
                        help="padded tokens per baseline batch (16384 on GPU, 4096 on CPU)")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--cuda-graphs", action="store_true", help="also time the CUDA-graph variant")
    parser.add_argument("--skip-fair-bf16", action="store_true")
    parser.add_argument("--variants", action="store_true",
                        help="also time ours without the fused GELU epilogue and with twice the token budget")
    parser.add_argument("--time-budget", type=float, default=420.0,
                        help="seconds after which optional methods are skipped")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file to write")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)  # the command, for the results file (less --out)
    keep = [a for i, a in enumerate(given) if a != "--out" and (i == 0 or given[i - 1] != "--out")]
    args.command = "".join(f" {a}" for a in keep if not a.startswith("--out="))
    cuda = torch.cuda.is_available() and not args.quick
    args.device = "cuda" if cuda else "cpu"
    args.baseline_budget = args.baseline_budget or (16384 if cuda else 4096)
    if not cuda:
        torch.set_num_threads(min(2, torch.get_num_threads()))
        args.cuda_graphs = False
        args.compile = False  # CPU compile is minutes on a shared 2-core box; not the point here
    if args.quick or not cuda:
        sizes = (args.sizes or "small-2x64,8M").split(",")
        n = args.n or 24
        seqs = make_sequences(n, args.seed, median=80, max_len=200)
    else:
        sizes = (args.sizes or "650M,8M,35M,150M").split(",")
        n = args.n or 3000
        seqs = make_sequences(n, args.seed)
    archs = SIZES | SMALL
    for s in sizes:
        if s not in archs:
            parser.error(f"unknown size {s!r}; choose from {', '.join(archs)}")
    start_time = time.perf_counter()
    card = card_name(args.device)
    tflops, ceil_dtype = matmul_ceiling(args.device)
    lengths = np.array([len(s) + 2 for s in seqs])
    import esm

    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")  # the sequence encoder's alphabet
    padded = token_budget_batches(lengths, args.baseline_budget, padded=True)
    fair_tokens, fair_tok_s = tokenise_fair_esm(alphabet, seqs, padded)
    hf_tokens, hf_tok_s = tokenise_transformers(transformers_tokenizer(alphabet), seqs, padded)
    shared = dict(tokens=int(lengths.sum()), lengths=lengths, tflops=tflops, padded=padded,
                  fair_tokens=fair_tokens, fair_tok_s=fair_tok_s, hf_tokens=hf_tokens,
                  hf_tok_s=hf_tok_s, warm=min(3, len(padded)))
    print(f"{card}; {ceil_dtype} matmul ceiling {tflops:.3g} TFLOP/s; {n} sequences, "
          f"{shared['tokens']:,} tokens (BOS/EOS included); tokenise: fair-esm {fair_tok_s:.1f} s, "
          f"transformers {hf_tok_s:.1f} s", flush=True)
    rows, summary = [], []
    for name in sizes:
        try:
            ours, results, floor = bench_size(name, archs[name], seqs, args, shared, rows,
                                              start_time)
            summary += verdicts(name, ours, results, floor, shared["tokens"], gpu=cuda)
        except Exception as error:  # noqa: BLE001 - keep the other sizes' numbers
            summary.append(f"{name}: FAILED {type(error).__name__}: {error}"[:400])
            print(summary[-1], flush=True)
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
    order = {s: i for i, s in enumerate(archs)}
    rows.sort(key=lambda r: order[r["model"]])
    total = time.perf_counter() - start_time
    md = markdown(card, tflops, ceil_dtype, n, shared, args, rows, summary, total)
    print("\n" + md)
    out = args.out or RESULTS / f"gpu_embed_{slug(card)}_{dt.date.today().isoformat()}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, md)
    print(f"wrote {out}")
    return 0


def _cos(value: float) -> str:
    return "n/a" if value != value else f"{value:.5f}"  # NaN: other weights, nothing to compare


def markdown(card, tflops, ceil_dtype, n, shared, args, rows, summary, total) -> str:
    head = [
        f"# ESM-2 embedding throughput: {card}, {dt.date.today().isoformat()}",
        "",
        f"`python benchmarks/gpu_embed.py{args.command}`; torch {torch.__version__}; "
        f"{n} sequences, {shared['tokens']:,} tokens (BOS/EOS included), log-normal lengths; "
        f"{ceil_dtype} matmul ceiling {tflops:.3g} TFLOP/s measured in this run; baselines: "
        f"length-sorted padded batches of <= {args.baseline_budget} tokens, tokenisation "
        f"(fair-esm {shared['fair_tok_s']:.1f} s, transformers {shared['hf_tok_s']:.1f} s) added to "
        f"their time; ours: end to end from strings. Total run {total:.0f} s.",
        "",
        "| model | method | tokens/s | model-only tokens/s | ours is x faster | of FLOP floor "
        "| min cosine vs fp32 | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    body = [f"| {r['model']} | {r['method']} | {r['tok_s']:,.0f} | {r['model_tok_s']:,.0f} | "
            f"{r['ours_x']:.2f} | {r['floor']:.1%} | {_cos(r['cos'])} | {r['note']} |" for r in rows]
    return "\n".join(head + body + ["", "```", *summary, "```", ""])


if __name__ == "__main__":
    raise SystemExit(main())
