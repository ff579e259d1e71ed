"""Config dataclasses from plain dicts (JSON, checkpoints, overrides): unknown fields are an error.

    dataclass_from_dict(GnnConfig, {"hidden": 64}, "encoder config")   # GnnConfig(hidden=64, ...)
    dataclass_from_dict(GnnConfig, {"hiden": 64}, "encoder config")    # OneProtError listing the valid fields
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from engine.errors import OneProtError

T = TypeVar("T")


def field_names(cls: type) -> list[str]:
    """The dataclass's field names, in declaration order."""
    return [f.name for f in dataclasses.fields(cls)]


def check_fields(cls: type, keys: Iterable[str], where: str, ignore: Iterable[str] = ()) -> None:
    """Raise a OneProtError naming `keys` that are no field of `cls` (and not in `ignore`), with the valid names."""
    known = set(field_names(cls))
    unknown = set(keys) - known - set(ignore)
    if unknown:
        raise OneProtError(f"unknown fields {sorted(unknown)}; valid: {sorted(known)}", where)


def dataclass_from_dict(cls: type[T], d: Mapping[str, Any], where: str, ignore: Iterable[str] = ()) -> T:
    """`cls(**d)` for a dataclass, refusing unknown fields; keys in `ignore` are accepted and dropped."""
    check_fields(cls, d, where, ignore)
    known = set(field_names(cls))
    return cls(**{k: v for k, v in d.items() if k in known})
