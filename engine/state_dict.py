"""Copy saved tensors into a module, failing with one clear error on missing, extra or mis-shaped keys."""

from __future__ import annotations

import torch
from torch import nn

from engine.errors import OneProtError


def load_state_checked(module: nn.Module, state: dict[str, torch.Tensor], where: str,
                       optional: set[str] = frozenset(), what: str = "weights") -> None:
    """Load `state` into `module`; keys in `optional` may be absent (e.g. weights re-read from a package)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state) - set(optional))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise OneProtError(
            f"{what} do not fit: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}",
            where,
        )
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise OneProtError(f"{k} has shape {tuple(v.shape)}, {what} expect {tuple(own[k].shape)}", where)
    module.load_state_dict(state, strict=False)
