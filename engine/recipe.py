"""Recipes: a named preset, narrowed to some modalities and changed by typed overrides, then trained.

The one way to vary a preset. `oneprot train` and `oneprot pretrain` build their preset here, and so
does every script, sweep or page that trains a variant; a command that compares variants (an ablation)
is a loop over `build_recipe(...)` + `train_variant(...)`.

    preset = build_recipe("demo", modalities=["structure_tokens"],
                          overrides={"encoders": {"structure_tokens": {"train_mask": 0.0}}, "train": {"steps": 250}},
                          pretrained={"sequence": "runs/demo/pretrain_sequence"})
    preset = build_recipe("demo", overrides=parse_sets(["train.lr=2e-3", "encoders.pocket.shell=8"]))
    trainer = build_trainer(preset, store, "runs/x")        # seeded model + Trainer; then trainer.fit(...)
    result = train_variant(preset, store, "runs/x", split="valid")   # train (resumable) + score, cached

Override keys (the dict form nests them; `--set key=value` joins them with dots):
    train.<field>                  TrainConfig            e.g. train.steps=250, train.modality_weights={"pocket":1}
    model.<field>                  ModelConfig scalars    e.g. model.dim=64, model.head=mlp
    encoders.<modality>.<field>    that encoder's config  e.g. encoders.pocket.shell=8, encoders.sequence.weights=null
    pretrain.<modality>.<field>    PretrainConfig         e.g. pretrain.sequence.lr=2e-3
Values are parsed by the field's declared type (int, float, bool, str, optional, dict, list; text that is
not JSON is a string); an unknown key or a value of the wrong type is a OneProtError listing what is valid.
"""

from __future__ import annotations

import argparse
import json
import os
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from engine.config import check_fields
from engine.errors import OneProtError

if typing.TYPE_CHECKING:
    from engine.presets.base import Preset

SECTIONS = ("train", "model", "encoders", "pretrain")
Overrides = Mapping[str, Any]


# ---- building ------------------------------------------------------------------------------------
def build_recipe(name: str, modalities: Iterable[str] | None = None,
                 overrides: Overrides | Iterable[Overrides] | None = None,
                 pretrained: Mapping[str, str | None] | None = None, where: str = "--set") -> Preset:
    """The named preset narrowed to `modalities` (sequence always kept), with `pretrained` ESM weights
    {modality: path} on their encoders (None paths skipped), then `overrides` (one dict or several, in order)."""
    from engine.presets import get_preset

    preset = narrow(get_preset(name), modalities)
    for modality, path in (pretrained or {}).items():
        if path:
            if modality not in preset.model.encoders:
                raise OneProtError(f"preset {name!r} has no {modality} encoder",
                                   f"--pretrained-{modality.replace('_', '-')}")
            preset.model.encoders[modality]["weights"] = str(path)
    if isinstance(overrides, Mapping):
        overrides = [overrides]
    for over in overrides or []:
        apply_overrides(preset, over, where)
    return preset


def narrow(preset: Preset, modalities: Iterable[str] | None) -> Preset:
    """The preset with only the encoders of `modalities` plus the sequence anchor (None or empty: all)."""
    from engine.modality import ANCHOR, parse_modality

    modalities = [m for m in (modalities or []) if str(m).strip()]
    if not modalities:
        return preset
    keep = {parse_modality(m).value for m in modalities} | {ANCHOR.value}
    missing = keep - set(preset.model.encoders)
    if missing:
        raise OneProtError(f"preset {preset.name!r} has no encoder for {sorted(missing)}", "--modalities")
    preset.model.encoders = {m: c for m, c in preset.model.encoders.items() if m in keep}
    return preset


def apply_overrides(preset: Preset, overrides: Overrides, where: str = "--set") -> Preset:
    """Apply {"train": {...}, "model": {...}, "encoders": {m: {...}}, "pretrain": {m: {...}}} in place, typed."""
    from engine.model import ModelConfig
    from engine.presets.base import PretrainConfig, TrainConfig

    if not isinstance(overrides, Mapping):
        raise OneProtError(f"overrides must be an object with keys among {list(SECTIONS)}", where)
    unknown = set(overrides) - set(SECTIONS)
    if unknown:
        raise OneProtError(f"unknown sections {sorted(unknown)}; valid: {list(SECTIONS)}", where)
    for field, value in _section(overrides, "train", where).items():
        _set_field(preset.train, TrainConfig, field, value, f"{where} train")
    for field, value in _section(overrides, "model", where).items():
        if field == "encoders":
            raise OneProtError("change encoders with encoders.<modality>.<field>", f"{where} model")
        _set_field(preset.model, ModelConfig, field, value, f"{where} model")
    for modality, fields in _section(overrides, "encoders", where).items():
        enc = preset.model.encoders.get(modality)
        if enc is None:
            raise OneProtError(f"preset {preset.name!r} has no {modality} encoder; it has {sorted(preset.model.encoders)}",
                               f"{where} encoders")
        fields = _fields(fields, modality, where)
        label = f"{where} encoders.{modality}"
        if "type" in fields:  # the encoder kind decides which fields the others may be
            kind = _coerce(fields["type"], str, f"{label}.type")
            if kind != enc.get("type", _default_type(modality)):
                enc.clear()  # another kind of encoder starts from its own defaults, not the old kind's fields
            enc["type"] = kind
        cls = _encoder_config_class(modality, enc.get("type"))
        for field, value in fields.items():
            if field == "type":
                continue
            check_fields(cls, [field], label)
            enc[field] = _coerce(value, typing.get_type_hints(cls)[field], f"{label}.{field}")
    for modality, fields in _section(overrides, "pretrain", where).items():
        if modality not in preset.model.encoders:
            raise OneProtError(f"preset {preset.name!r} has no {modality} encoder to pretrain", f"{where} pretrain")
        cfg = preset.pretrain.setdefault(modality, PretrainConfig())
        for field, value in _fields(fields, modality, where).items():
            _set_field(cfg, PretrainConfig, field, value, f"{where} pretrain.{modality}")
    return preset


def parse_sets(pairs: Iterable[str]) -> dict:
    """['train.lr=2e-3', 'encoders.pocket.shell=8'] -> {"train": {"lr": "2e-3"}, "encoders": {"pocket": {"shell": "8"}}}.

    Values stay text here; apply_overrides parses them by the field's type."""
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        parts = [p.strip() for p in key.split(".")]
        depth = 3 if parts[0] in ("encoders", "pretrain") else 2
        if not sep or len(parts) != depth or not all(parts):
            raise OneProtError(f"expected KEY=VALUE with KEY one of train.<field>, model.<field>, "
                               f"encoders.<modality>.<field>, pretrain.<modality>.<field>; got {pair!r}", "--set")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


# ---- the CLI side --------------------------------------------------------------------------------
def add_recipe_arguments(parser: argparse.ArgumentParser, modalities: bool = True) -> None:
    """--preset, --set KEY=VALUE (repeatable) and, for alignment, --modalities."""
    parser.add_argument("--preset", default="demo", help="named preset (see engine/presets)")
    if modalities:
        parser.add_argument("--modalities", default=None,
                            help="comma-separated subset of the preset's modalities to build (sequence is always kept)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="change the preset, repeatable: train.<field>, model.<field>, encoders.<modality>.<field>, "
                        "pretrain.<modality>.<field> (values typed by the field; see engine/recipe.py)")


def recipe_from_args(args: argparse.Namespace, pretrained: Mapping[str, str | None] | None = None) -> Preset:
    """The preset named by parsed add_recipe_arguments flags."""
    mods = getattr(args, "modalities", None)
    modalities = [m for m in mods.split(",") if m.strip()] if mods else None
    return build_recipe(args.preset, modalities, parse_sets(args.sets), pretrained)


# ---- training ------------------------------------------------------------------------------------
def build_trainer(preset: Preset, store, out: str | os.PathLike, model=None, on_step=None, progress: bool = False):
    """A Trainer for the recipe; the model is built after seeding torch with train.seed unless given."""
    import torch

    from engine.model import OneProt
    from engine.train import Trainer

    if model is None:
        torch.manual_seed(preset.train.seed)
        model = OneProt(preset.model)
    return Trainer(model, store, preset.train, out, on_step=on_step, progress=progress)


def train_variant(preset: Preset, store, out: str | os.PathLike, split: str = "valid", steps: int | None = None,
                  tmscore_max: int = 0) -> dict:
    """Train the recipe into `out` (resumable) and score every pair on `split` (no probes); the result is
    cached in out/result.json, so a re-run on the same split returns it. Returns {"split", "seconds", "pairs"}."""
    from engine.evaluate.run import evaluate
    from engine.evaluate.selection import require_selection_split
    from engine.files import write_text_atomic

    require_selection_split(split, "split")  # a variant is scored to choose between variants: never on test
    done = Path(out) / "result.json"
    if done.is_file():
        cached = json.loads(done.read_text())
        if cached.get("split") == split:
            return cached
    trainer = build_trainer(preset, store, out)
    summary = trainer.fit(steps=steps, resume=True)
    res = evaluate(trainer.model.eval(), store, split, run_probes=False, tmscore_max=tmscore_max, relatives_tm_max=0,
                   log=lambda m: None)
    pairs = {pair: {"R@10": r["R@10"], "MRR": r["MRR"], "hits": round(r["R@10"] * r["n_queries"]),
                    "n": r["n_queries"], "chance": r["chance"]["R@10"]} for pair, r in res["retrieval"].items()}
    result = {"split": split, "seconds": summary["seconds"], "pairs": pairs}
    write_text_atomic(done, json.dumps(result, indent=1))
    return result


# ---- typed values --------------------------------------------------------------------------------
def _section(d: Mapping, name: str, where: str) -> Mapping:
    return _fields(d.get(name, {}), name, where)


def _fields(value: Any, name: str, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise OneProtError(f"{name} must be an object of fields", where)
    return value


def _default_type(modality: str) -> str | None:
    """The encoder kind a config without `type` builds (the first of model.ENCODER_TYPES)."""
    from engine.modality import parse_modality
    from engine.model import ENCODER_TYPES

    return ENCODER_TYPES.get(parse_modality(modality), (None,))[0]


def _encoder_config_class(modality: str, kind: str | None) -> type:
    from engine.modality import parse_modality
    from engine.model import encoder_class

    return encoder_class(parse_modality(modality), kind).config_class


def _set_field(obj: Any, cls: type, field: str, value: Any, where: str) -> None:
    check_fields(cls, [field], where)
    setattr(obj, field, _coerce(value, typing.get_type_hints(cls)[field], f"{where}.{field}"))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """`value` as type `tp`; text is parsed as JSON unless the type takes text."""
    args = typing.get_args(tp)
    optional = type(None) in args
    inner = [a for a in args if a is not type(None)] if optional else [tp]
    base = inner[0] if len(inner) == 1 else tp
    origin = typing.get_origin(base) or base
    if optional and isinstance(value, str) and value.strip().lower() in ("none", "null"):
        return None
    if isinstance(value, str) and origin is not str:
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise OneProtError(f"{value!r} is not a valid {_name(tp)}", where) from None
    if value is None:
        if optional:
            return None
        raise OneProtError(f"needs a {_name(tp)}, not null", where)
    if origin is bool:
        ok = isinstance(value, bool)
    elif origin is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif origin is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif origin in (dict, list, str):
        ok = isinstance(value, origin)
    else:
        ok = True  # a type this parser does not know: the config class checks it when built
    if not ok:
        raise OneProtError(f"{value!r} is not a valid {_name(tp)}", where)
    return value


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")

