"""Masked-LM pretraining of the ESM-2-architecture encoders (sequence; 3Di structure tokens).

ESM-2's recipe at small scale: 15% of residue positions are selected; of those 80% become <mask>,
10% a random letter, 10% stay; cross-entropy on the selected positions only. Items are random
crops of `max_length` residues from the store's train split (valid/test stay unseen, so the
held-out retrieval numbers of a model built on these weights are not contaminated).

Output: a folder loadable as `weights` by the sequence / structure-token encoder
(`esm.safetensors` + `esm_config.json` + `metrics.jsonl`), written atomically.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.encoders.esm_arch import EsmArch, build_esm2, save_esm_folder
from engine.errors import OneProtError
from engine.modality import Modality, parse_modality
from engine.presets.base import PretrainConfig

ALPHABET_OF = {Modality.SEQUENCE: "protein", Modality.STRUCTURE_TOKENS: "3di"}
IGNORE = -100


def mask_tokens(tokens: torch.Tensor, alphabet, mask_prob: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT/ESM masking. tokens (B, T) -> (inputs (B, T), labels (B, T) with -100 where not scored)."""
    special = torch.tensor([alphabet.cls_idx, alphabet.eos_idx, alphabet.padding_idx])
    candidate = ~torch.isin(tokens, special)
    selected = (torch.rand(tokens.shape, generator=generator) < mask_prob) & candidate
    labels = torch.where(selected, tokens, torch.full_like(tokens, IGNORE))
    roll = torch.rand(tokens.shape, generator=generator)
    inputs = tokens.clone()
    inputs[selected & (roll < 0.8)] = alphabet.mask_idx
    letters = torch.tensor([alphabet.get_idx(t) for t in alphabet.standard_toks if len(t) == 1 and t.isalpha()])
    random_pos = selected & (roll >= 0.8) & (roll < 0.9)
    pick = torch.randint(len(letters), tokens.shape, generator=generator)
    inputs[random_pos] = letters[pick][random_pos]
    return inputs, labels


def collate_letters(texts: list[str], alphabet) -> torch.Tensor:
    """Strings -> (B, T) tokens with BOS/EOS/padding (same convention as the encoders' collate)."""
    width = max(len(t) for t in texts) + 2
    tokens = torch.full((len(texts), width), alphabet.padding_idx, dtype=torch.long)
    for i, t in enumerate(texts):
        ids = [alphabet.get_idx(c) for c in t]
        tokens[i, 0] = alphabet.cls_idx
        tokens[i, 1 : len(ids) + 1] = torch.tensor(ids, dtype=torch.long)
        tokens[i, len(ids) + 1] = alphabet.eos_idx
    return tokens


def _crop(text: str, length: int, rng: np.random.Generator) -> str:
    if len(text) <= length:
        return text
    start = int(rng.integers(0, len(text) - length + 1))
    return text[start : start + length]


def corpus(store, modality: Modality, split: str) -> list[str]:
    """The strings of a split that the modality's ESM encoder reads."""
    ids = store.ids(split=split, modality=modality)
    column = "sequence" if modality is Modality.SEQUENCE else "structure_tokens"
    rows = store.proteins.set_index("id").loc[ids, column] if ids else []
    return [str(s).upper() for s in rows if s]


def masked_lm_loss(model, tokens: torch.Tensor, alphabet, mask_prob: float, generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """Cross-entropy on masked positions and the accuracy there."""
    inputs, labels = mask_tokens(tokens, alphabet, mask_prob, generator)
    if _device(model).type == "cpu":
        logits, labels = _packed_logits(model, inputs, labels, alphabet.padding_idx)  # (N, V), (N,)
    else:
        logits = model(inputs.to(_device(model)))["logits"]  # (B, T, V)
        labels = labels.to(logits.device)
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)
    scored = labels != IGNORE
    acc = float((logits.argmax(-1)[scored] == labels[scored]).float().mean()) if scored.any() else float("nan")
    return loss, acc


def _packed_logits(model, inputs: torch.Tensor, labels: torch.Tensor, padding_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """LM logits of every non-padding token through the padding-free forward (engine.encoders.packed_esm).

    Same maths as `model(inputs)["logits"]` at those positions, without computing on padding (1.1x
    faster for the demo's 128-residue crops: benchmarks/esm_train_step.py). Rows of
    `inputs` are BOS, residues, EOS, then padding (collate_letters' layout).
    """
    from engine.encoders.packed_esm import pack_padded, packed_forward

    packed = pack_padded(inputs, padding_idx)
    states = packed_forward(model, packed).last  # (N tokens, D)
    lengths = packed.lengths[: packed.n_sequences]  # tokens per row, BOS/EOS included
    flat_labels = torch.cat([row[:n] for row, n in zip(labels, lengths)])
    return model.lm_head(states), flat_labels


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def heldout_mlm(model, texts: list[str], alphabet, cfg: PretrainConfig, max_items: int = 256) -> dict:
    """Masked-LM loss / perplexity / accuracy on held-out strings (fixed masking seed)."""
    if not texts:
        return {}
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed + 12345)
    rng = np.random.default_rng(cfg.seed + 12345)
    losses, accs = [], []
    texts = texts[:max_items]
    for s in range(0, len(texts), cfg.batch_size):
        chunk = [_crop(t, cfg.max_length, rng) for t in texts[s : s + cfg.batch_size]]
        loss, acc = masked_lm_loss(model, collate_letters(chunk, alphabet), alphabet, cfg.mask_prob, gen)
        losses.append(float(loss))
        accs.append(acc)
    model.train()
    mean = float(np.mean(losses))
    return {"valid_loss": mean, "valid_perplexity": math.exp(mean), "valid_accuracy": float(np.nanmean(accs))}


def pretrain(modality: str | Modality, store, arch: EsmArch, cfg: PretrainConfig, out: str | os.PathLike,
             on_step: list[Callable[[dict], None]] | None = None, progress: bool = True,
             cancel: threading.Event | None = None, device: torch.device | None = None,
             init: str | None = None) -> dict:
    """Pretrain one ESM-2-architecture encoder with masked LM and save it to `out`. Returns a summary.

    `init`: start from these weights (released name, fair-esm file or pretrain folder) instead of random
    ones; their shape replaces `arch`'s. An amino-acid model can start a 3Di one (the paper extends ESM-2's
    vocabulary): special-token rows are kept, the 3Di letters get fresh rows.
    """
    from tqdm.auto import tqdm

    m = parse_modality(modality)
    if m not in ALPHABET_OF:
        raise OneProtError(f"masked-LM pretraining applies to sequence and structure_tokens, not {m.value}", "modality")
    state = None
    if init:
        from engine.encoders.esm_arch import load_esm_weights

        source_arch, state = load_esm_weights(init, ALPHABET_OF[m])
        arch = source_arch
    arch = EsmArch(arch.layers, arch.dim, arch.heads, ALPHABET_OF[m], arch.token_dropout)
    texts = corpus(store, m, "train")
    if len(texts) < 2:
        raise OneProtError(f"the train split has {len(texts)} {m.value} strings; need at least 2", str(store.path))
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    model = build_esm2(arch)
    if state is not None:
        from engine.encoders.esm_arch import load_into

        load_into(model, state, init)
    model = model.to(device)
    alphabet = model.alphabet
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    log, started = [], time.perf_counter()
    model.train()
    bar = tqdm(total=cfg.steps, disable=not progress, desc=f"pretrain {m.value}", dynamic_ncols=True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    for step in range(1, cfg.steps + 1):
        if cancel is not None and cancel.is_set():
            break
        pick = rng.choice(len(texts), size=min(cfg.batch_size, len(texts)), replace=False)
        tokens = collate_letters([_crop(texts[i], cfg.max_length, rng) for i in pick], alphabet)
        lr = cfg.lr * min(1.0, step / max(cfg.warmup_steps, 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast:
            loss, acc = masked_lm_loss(model, tokens, alphabet, cfg.mask_prob, gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        record = {"step": step, "loss": loss.item(), "acc": acc, "lr": lr}
        log.append(record)
        for callback in on_step or []:
            callback(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
        if not progress and step % 50 == 0:  # a heartbeat for logs when the bar is off
            print(f"pretrain {m.value} step {step}/{cfg.steps} loss {record['loss']:.3f}", file=sys.stderr, flush=True)
    bar.close()
    held = heldout_mlm(model, corpus(store, m, "valid"), alphabet, cfg)
    summary = {"modality": m.value, "steps": len(log), "train_items": len(texts),
               "final_loss": float(np.mean([r["loss"] for r in log[-20:]])) if log else None,
               "seconds": round(time.perf_counter() - started, 1), "store": str(store.path),
               "store_created": store.manifest.get("created"),
               "config": cfg.to_dict(), "init": init, **held}
    save_esm_folder(model.cpu(), arch, out, extra={"pretrain": summary},
                    files={"metrics.jsonl": "".join(json.dumps(r) + "\n" for r in log)})
    summary["out"] = str(Path(out))
    return summary

