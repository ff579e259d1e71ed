"""What the aligned model is compared against, each giving vectors in the same shape as the model's.

* unaligned: the checkpoint's own encoders with freshly initialised (seeded) projection heads, i.e.
  the model as it stood before alignment training touched the heads; or, when the user passes one,
  a pre-alignment checkpoint (`--baseline-checkpoint`) embedded the normal way.
* pre-head features: each encoder's pooled output before its head (used by the evolution and
  probe analyses, where no shared space is needed).
* random: seeded random unit vectors, one per protein and modality (empirical chance).
* classical: k-mer composition vectors compared by cosine, where both sides of a pair carry
  comparable letters: amino-acid 3-mers for sequence / structure / pocket (all carry their
  residues' amino acids), 3Di 3-mers for structure_tokens vs structure (3Di computed from the
  coordinates with mini3di). Text pairs have no classical counterpart here.
* length: chain-length matching, score = -|log(La / Lb)|, for pairs whose sides both carry a whole
  chain (sequence, structure, structure_tokens). A protein's own partner always has exactly its
  length, so this says how much of a pair's retrieval the residue count alone solves.
"""

from __future__ import annotations

import copy
from itertools import product
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.modality import Modality

AMINO = "ACDEFGHIKLMNPQRSTVWY"
THREEDI = "ACDEFGHIKLMNPQRSTVWY"  # Foldseek's 3Di alphabet uses the same 20 letters


def pooled_features(model, modality: str, items: list[Any], batch_tokens: int = 16_384) -> np.ndarray:
    """(N, H) encoder outputs before the projection head, in input order (OneProt.pooled)."""
    return model.pooled(modality, items, batch_tokens)


@torch.no_grad()
def apply_head(head: nn.Module, pooled: np.ndarray) -> np.ndarray:
    """Pooled features -> unit vectors through a projection head (what model.encode does after the encoder)."""
    p = next(head.parameters())
    z = head(torch.from_numpy(np.ascontiguousarray(pooled)).to(device=p.device, dtype=p.dtype)).float()
    return torch.nn.functional.normalize(z, dim=-1).cpu().numpy()


def random_heads(model, seed: int = 0) -> dict[str, nn.Module]:
    """Copies of the model's heads re-initialised with a fixed seed: the pre-alignment heads."""
    out = {}
    for i, m in enumerate(model.modalities):
        head = copy.deepcopy(model.heads[m])
        torch.manual_seed(seed + 1009 * i)
        for layer in head.modules():
            if hasattr(layer, "reset_parameters"):  # Linear, LayerNorm, ...: PyTorch's own initialisation
                layer.reset_parameters()
        out[m] = head.eval()
    return out


def random_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """n seeded random unit vectors."""
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def kmer_vectors(strings: list[str], alphabet: str, k: int = 3) -> np.ndarray:
    """Unit-normalised k-mer count vectors (N, |alphabet|^k); letters outside the alphabet are skipped."""
    vocab = {"".join(p): i for i, p in enumerate(product(alphabet, repeat=k))}
    out = np.zeros((len(strings), len(vocab)), dtype=np.float32)
    for r, s in enumerate(strings):
        for j in range(len(s) - k + 1):
            col = vocab.get(s[j : j + k])
            if col is not None:
                out[r, col] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def classical_strings(modality: str, items: list[Any], against: str) -> tuple[list[str], str] | None:
    """The letters a classical method compares for `modality` when paired with `against`, or None."""
    aa_like = {Modality.SEQUENCE.value, Modality.STRUCTURE.value, Modality.POCKET.value}
    if modality in aa_like and against in aa_like:
        return [residue_letters(x) for x in items], AMINO
    pair = {modality, against}
    if pair == {Modality.STRUCTURE_TOKENS.value, Modality.STRUCTURE.value}:
        if modality == Modality.STRUCTURE_TOKENS.value:
            return list(items), THREEDI
        from engine.data.tokens3di import structure_tokens

        return [structure_tokens(x.coords) for x in items], THREEDI
    return None


def residue_letters(item: Any) -> str:
    """Amino-acid letters of an item: a pocket's lining residues only (not the chain it is cut from)."""
    if not hasattr(item, "sequence"):
        return str(item)
    focus = getattr(item, "focus", None)
    return item.sequence if focus is None else "".join(item.sequence[int(i)] for i in focus)


LENGTH_NAME = "chain-length match, score -|log(La/Lb)|"
_WHOLE_CHAIN = {Modality.SEQUENCE.value, Modality.STRUCTURE.value, Modality.STRUCTURE_TOKENS.value}


def chain_length(item: Any) -> int:
    """Residue count of a sequence / 3Di string / StructureInput."""
    return len(item.sequence) if hasattr(item, "sequence") else len(item)


def length_scores(a_items: list[Any], b_items: list[Any]) -> np.ndarray:
    """(Na, Nb) length-match scores, higher = closer in length."""
    la = np.log(np.maximum([chain_length(x) for x in a_items], 1)).astype(np.float64)
    lb = np.log(np.maximum([chain_length(x) for x in b_items], 1)).astype(np.float64)
    return -np.abs(la[:, None] - lb[None, :])


def has_length_baseline(a: str, b: str) -> bool:
    """Whether both sides of a->b carry a whole chain (pockets and text do not)."""
    return a in _WHOLE_CHAIN and b in _WHOLE_CHAIN


def classical_name(a: str, b: str) -> str | None:
    """A short description of the classical baseline for pair a->b, or None where there is none."""
    aa_like = {Modality.SEQUENCE.value, Modality.STRUCTURE.value, Modality.POCKET.value}
    if a in aa_like and b in aa_like:
        return "amino-acid 3-mer composition cosine"
    if {a, b} == {Modality.STRUCTURE_TOKENS.value, Modality.STRUCTURE.value}:
        return "3Di 3-mer composition cosine (3Di from coordinates via mini3di)"
    return None
