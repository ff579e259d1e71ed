"""Named presets: `list_presets()`, `get_preset(name)`. One module per preset, each with `build()`.

    tiny   seconds-scale model for tests
    demo   small model that pretrains and aligns on 2 CPU cores in about 15 minutes
    paper  the published configuration (ESM-2 650M frozen, 3Di ESM-2 35M, GNNs 4x128, BiomedBERT)
"""

from __future__ import annotations

import importlib

from engine.errors import OneProtError
from engine.presets.base import PretrainConfig, Preset, TrainConfig

_PRESETS = ("tiny", "demo", "paper")

__all__ = ["Preset", "PretrainConfig", "TrainConfig", "get_preset", "list_presets"]


def list_presets() -> list[str]:
    """Names accepted by get_preset."""
    return list(_PRESETS)


def get_preset(name: str) -> Preset:
    """A fresh Preset by name (callers may edit it), or a OneProtError listing the valid names."""
    if name not in _PRESETS:
        raise OneProtError(f"unknown preset {name!r}; choose one of: {', '.join(_PRESETS)}", "preset")
    return importlib.import_module(f"engine.presets.{name}").build()
