"""Align with a preset changed by JSON overrides: how the demo recipe's variants were compared.

    python scripts/align_variant.py OVERRIDES OUT [--preset demo] [--data demo] [--modalities structure_tokens]
                                    [--pretrained-sequence DIR] [--pretrained-structure-tokens DIR] [--steps N]

OVERRIDES is a JSON object: {"encoders": {modality: {field: value}}, "train": {field: value}}, e.g.
'{"encoders": {"structure_tokens": {"pooling": "attention", "train_mask": 0.15}}, "train": {"steps": 250}}'.
It runs `oneprot train` (resumable, threads 2) into OUT with the changed preset; evaluate the result with
`oneprot evaluate --checkpoint OUT/model --data demo --split valid --no-probes`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def apply_overrides(preset, over: dict):
    """The preset with OVERRIDES applied in place: {"encoders": {modality: {field: value}}, "train": {field: value}}."""
    from engine.errors import OneProtError

    if not isinstance(over, dict) or set(over) - {"encoders", "train"}:
        raise OneProtError("must be an object with only 'encoders' and 'train' keys", "OVERRIDES")
    for modality, fields in over.get("encoders", {}).items():
        if modality not in preset.model.encoders:
            raise OneProtError(f"preset {preset.name!r} has no {modality} encoder", "OVERRIDES")
        preset.model.encoders[modality].update(fields)
    for field, value in over.get("train", {}).items():
        if not hasattr(preset.train, field):
            raise OneProtError(f"TrainConfig has no field {field!r}", "OVERRIDES")
        setattr(preset.train, field, value)
    return preset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", help="JSON object with 'encoders' and/or 'train' keys")
    ap.add_argument("out", help="run folder")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--data", default="demo")
    ap.add_argument("--modalities", default=None, help="subset to build (sequence is always kept)")
    ap.add_argument("--pretrained-sequence", default=None)
    ap.add_argument("--pretrained-structure-tokens", default=None)
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args(argv)

    import engine.presets as presets
    from engine.cli import main as cli_main

    try:
        over = json.loads(args.overrides)
    except json.JSONDecodeError as error:
        sys.exit(f"OVERRIDES is not JSON: {error}")
    if not isinstance(over, dict) or set(over) - {"encoders", "train"}:
        sys.exit("OVERRIDES must be an object with only 'encoders' and 'train' keys")
    original = presets.get_preset

    def changed(name: str):
        preset = original(name)
        return apply_overrides(preset, over) if name == args.preset else preset

    presets.get_preset = changed  # engine.commands.train looks the preset up at run time
    cmd = ["train", "--preset", args.preset, "--data", args.data, "--out", args.out, "--resume", "--threads", "2",
           "--quiet"]
    for flag in ("modalities", "pretrained_sequence", "pretrained_structure_tokens", "steps"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    try:
        return cli_main(cmd)
    finally:
        presets.get_preset = original  # callers in the same process (tests) see the preset unchanged


if __name__ == "__main__":
    raise SystemExit(main())
