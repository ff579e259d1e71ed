"""ESM-2 architecture helpers shared by the sequence and structure-token encoders.

Builds fair-esm `ESM2` models of any size, the two alphabets (amino acids; Foldseek 3Di),
and reads/writes weights without unpickling arbitrary objects:
  - a released fair-esm name (`esm2_t6_8M_UR50D`, ...) -> `esm.pretrained` (needs internet once),
  - a fair-esm-format `.pt` file ({'model': state, 'cfg': {'model': Namespace}} or {'args': ...})
    read with `torch.load(weights_only=True)` plus `argparse.Namespace` allow-listed,
  - a folder written by `save_esm_folder` (`esm.safetensors` + `esm_config.json`), which is what
    `oneprot pretrain` produces.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import esm
import torch
from esm.model.esm2 import ESM2
from safetensors.torch import load_file, save_file

from engine.errors import OneProtError
from engine.files import atomic_dir, atomic_file
from engine.state_dict import load_state_checked

# Foldseek's 3Di states use the 20 amino-acid letters as names; they mean structure states.
THREEDI_LETTERS = "ACDEFGHIKLMNPQRSTVWY"
# Upstream OneProt's 3Di vocabulary: ESM-2's 33 tokens, then these 21 tokens added in this order
# (ids 33..53): the lowercase 3Di letters as SaProt writes them, and '#' (low pLDDT in SaProt strings).
UPSTREAM_3DI_ADDED = tuple("pynwrqhgdlvtmfsaeikc") + ("#",)
ALPHABETS = ("protein", "3di", "3di_upstream")

# Released ESM-2 sizes: name -> (layers, embed_dim, heads). Used to build matching
# architectures offline and to check a downloaded checkpoint against its name.
RELEASED_ESM2: dict[str, tuple[int, int, int]] = {
    "esm2_t6_8M_UR50D": (6, 320, 20),
    "esm2_t12_35M_UR50D": (12, 480, 20),
    "esm2_t30_150M_UR50D": (30, 640, 20),
    "esm2_t33_650M_UR50D": (33, 1280, 20),
    "esm2_t36_3B_UR50D": (36, 2560, 40),
    "esm2_t48_15B_UR50D": (48, 5120, 40),
}

ESM_WEIGHTS_FILE = "esm.safetensors"
ESM_CONFIG_FILE = "esm_config.json"


@dataclass
class EsmArch:
    """Shape of an ESM-2 network; `alphabet` is 'protein' or '3di'."""

    layers: int
    dim: int
    heads: int
    alphabet: str = "protein"
    token_dropout: bool = True  # ESM-2 rescales embeddings by the mask ratio; keep it as released


def make_alphabet(kind: str) -> esm.data.Alphabet:
    """The ESM-1b/ESM-2 amino-acid alphabet, or the same layout over the 20 3Di letters."""
    if kind == "protein":
        return esm.data.Alphabet.from_architecture("ESM-1b")
    if kind == "3di":
        # Same special tokens and BOS/EOS convention as ESM-2, so the same ESM2 class runs it.
        return esm.data.Alphabet(
            standard_toks=list(THREEDI_LETTERS),
            prepend_toks=("<cls>", "<pad>", "<eos>", "<unk>"),
            append_toks=("<mask>",),
            prepend_bos=True,
            append_eos=True,
        )
    if kind == "3di_upstream":
        # ESM-1b's layout with the added tokens after <mask>, as transformers' add_tokens numbers them.
        return esm.data.Alphabet(
            standard_toks=esm.data.proteinseq_toks["toks"],
            prepend_toks=("<cls>", "<pad>", "<eos>", "<unk>"),
            append_toks=("<mask>", *UPSTREAM_3DI_ADDED),
            prepend_bos=True,
            append_eos=True,
        )
    raise OneProtError(f"unknown alphabet {kind!r}; choose one of: {', '.join(ALPHABETS)}", "alphabet")


def build_esm2(arch: EsmArch) -> ESM2:
    """A randomly initialised ESM-2 network of the given shape."""
    if arch.dim % arch.heads:
        raise OneProtError(f"embed dim {arch.dim} is not divisible by {arch.heads} heads", "encoder config")
    return ESM2(
        num_layers=arch.layers,
        embed_dim=arch.dim,
        attention_heads=arch.heads,
        alphabet=make_alphabet(arch.alphabet),
        token_dropout=arch.token_dropout,
    )


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # fair-esm checkpoints store fairseq names; the released loader strips these prefixes too.
    pattern = re.compile(r"^(encoder\.sentence_encoder\.|encoder\.)")
    return {pattern.sub("", k): v for k, v in state.items()}


def read_fair_esm_file(path: str | os.PathLike, alphabet: str = "protein") -> tuple[EsmArch, dict[str, torch.Tensor]]:
    """Architecture + state dict from a fair-esm `.pt` file, without running arbitrary pickles."""
    path = Path(path)
    if not path.is_file():
        raise OneProtError("ESM checkpoint file not found", str(path))
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt zip, unknown pickled class, truncated file
        raise OneProtError(
            "cannot read as a fair-esm checkpoint with weights_only=True (expected a dict with 'model' "
            f"and 'cfg' or 'args', holding only tensors and argparse.Namespace): {str(exc).splitlines()[0]}",
            str(path),
        ) from None
    if not isinstance(data, dict) or "model" not in data:
        raise OneProtError("expected a dict with a 'model' state dict (fair-esm format)", str(path))
    cfg = None
    if isinstance(data.get("cfg"), dict) and data["cfg"].get("model") is not None:
        cfg = data["cfg"]["model"]
    elif data.get("args") is not None:
        cfg = data["args"]
    if cfg is None:
        raise OneProtError("fair-esm checkpoint has neither cfg['model'] nor args", str(path))
    get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
    try:
        arch = EsmArch(
            layers=int(get("encoder_layers")),
            dim=int(get("encoder_embed_dim")),
            heads=int(get("encoder_attention_heads")),
            alphabet=alphabet,
            token_dropout=bool(get("token_dropout", True)),
        )
    except (TypeError, ValueError):
        raise OneProtError(
            "cfg lacks encoder_layers / encoder_embed_dim / encoder_attention_heads", str(path)
        ) from None
    return arch, _strip_prefixes(data["model"])


def write_fair_esm_file(model: ESM2, path: str | os.PathLike) -> Path:
    """Save an ESM2 in fair-esm's own `.pt` layout (for users of fair-esm tools). Atomic."""
    path = Path(path)
    cfg = argparse.Namespace(
        encoder_layers=model.num_layers,
        encoder_embed_dim=model.embed_dim,
        encoder_attention_heads=model.attention_heads,
        token_dropout=model.token_dropout,
    )
    state = {f"encoder.sentence_encoder.{k}": v for k, v in model.state_dict().items()}
    with atomic_file(path) as tmp:
        torch.save({"model": state, "cfg": {"model": cfg}}, tmp)
    return path


def save_esm_folder(model: ESM2, arch: EsmArch, folder: str | os.PathLike, extra: dict | None = None,
                    files: dict[str, str] | None = None) -> Path:
    """Write `esm.safetensors` + `esm_config.json` (+ any text `files`) into `folder` atomically."""
    # The LM head's weight is tied to the embedding; safetensors refuses shared storage.
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_dir(folder) as tmp:
        save_file(state, str(tmp / ESM_WEIGHTS_FILE))
        (tmp / ESM_CONFIG_FILE).write_text(json.dumps({"arch": asdict(arch), **(extra or {})}, indent=2))
        for name, text in (files or {}).items():
            (tmp / name).write_text(text)
    folder = Path(folder)
    return folder


def read_esm_folder(folder: str | os.PathLike) -> tuple[EsmArch, dict[str, torch.Tensor]]:
    """Architecture + weights from a folder written by `save_esm_folder`."""
    folder = Path(folder)
    cfg_file, weights = folder / ESM_CONFIG_FILE, folder / ESM_WEIGHTS_FILE
    if not cfg_file.is_file() or not weights.is_file():
        raise OneProtError(f"expected {ESM_CONFIG_FILE} and {ESM_WEIGHTS_FILE} (from `oneprot pretrain`)", str(folder))
    try:
        arch = EsmArch(**json.loads(cfg_file.read_text())["arch"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise OneProtError(f"corrupted ESM config: {exc}", str(cfg_file)) from None
    try:
        state = load_file(str(weights))
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types on truncation
        raise OneProtError(f"corrupted ESM weights: {exc}", str(weights)) from None
    return arch, state


def load_esm_weights(source: str, alphabet: str = "protein") -> tuple[EsmArch, dict[str, torch.Tensor]]:
    """Architecture + state dict from a released name, a fair-esm `.pt` file or a pretrain folder."""
    p = Path(source).expanduser()
    if p.is_dir():
        return read_esm_folder(p)
    if p.suffix == ".pt" or p.exists():
        return read_fair_esm_file(p, alphabet)
    if source in RELEASED_ESM2:
        try:
            model, _ = esm.pretrained.load_model_and_alphabet(source)
        except Exception as exc:  # noqa: BLE001 - network errors surface as many types
            raise OneProtError(
                f"could not fetch released weights {source!r} (needs internet once, or pass a local .pt file): {exc}",
                "weights",
            ) from None
        layers, dim, heads = RELEASED_ESM2[source]
        # Released checkpoints are amino-acid models; a 3Di encoder starting from them remaps the vocab.
        return EsmArch(layers, dim, heads, "protein", model.token_dropout), model.state_dict()
    valid = ", ".join(RELEASED_ESM2)
    raise OneProtError(f"no such file or folder, and not a released ESM-2 name (known: {valid})", source)


def load_into(model: ESM2, state: dict[str, torch.Tensor], where: str) -> None:
    """Copy `state` into `model`, remapping vocabulary rows by token string when alphabets differ.

    Contact-regression weights are optional (we never predict contacts). A 3Di model started from an
    amino-acid checkpoint keeps its special-token rows and gets fresh rows for the 3Di letters, as the
    paper extends ESM-2's vocabulary with new structure tokens.
    """
    own = model.state_dict()
    state = dict(state)
    vocab_keys = ("embed_tokens.weight", "lm_head.weight", "lm_head.bias")
    src_vocab = state.get("embed_tokens.weight")
    if src_vocab is not None and src_vocab.shape[0] != own["embed_tokens.weight"].shape[0]:
        src_alpha = make_alphabet("protein") if src_vocab.shape[0] == 33 else None
        if src_alpha is None:
            raise OneProtError(
                f"vocabulary of {src_vocab.shape[0]} tokens does not match this encoder's "
                f"{own['embed_tokens.weight'].shape[0]} (neither the ESM-2 amino-acid alphabet nor the same alphabet)",
                where,
            )
        # An alphabet that extends ESM-2's (upstream's 3Di vocabulary) keeps every amino-acid row, as
        # transformers' resize_token_embeddings does; the 3Di alphabet re-uses only the special tokens.
        extends = all(model.alphabet.tok_to_idx.get(t) == i for t, i in src_alpha.tok_to_idx.items())
        for key in vocab_keys:
            if key not in state:
                continue
            new = own[key].clone()
            for tok, j in model.alphabet.tok_to_idx.items():
                if (extends or tok.startswith("<")) and tok in src_alpha.tok_to_idx:
                    new[j] = state[key][src_alpha.tok_to_idx[tok]]
            state[key] = new
    optional = {"contact_head.regression.weight", "contact_head.regression.bias"}
    load_state_checked(model, state, where, optional=optional, what="ESM weights for this architecture")
