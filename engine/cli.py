"""The `oneprot` command. Each sub-command lives in engine/commands/<name>.py.

A command module defines `add_arguments(parser)` and `run(args) -> int | None`. Modules are
imported only when their command runs, so `oneprot --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine.errors import OneProtError

# command name -> (module under engine.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("data", "build a dataset store from files, or print its statistics"),
    "pretrain": ("pretrain", "masked-LM pretraining of an ESM-2-architecture encoder"),
    "train": ("train", "align modality encoders to the sequence anchor (InfoNCE)"),
    "embed": ("embed", "embed every protein and modality of a store"),
    "search": ("search", "cross-modal nearest-neighbour search"),
    "evaluate": ("evaluate", "retrieval, evolution and probe metrics against baselines"),
    "project": ("project", "UMAP projection of embeddings"),
    "convert-upstream": ("convert_upstream", "convert upstream OneProt's released checkpoint to this format"),
    "calibrate": ("calibrate", "significance of hits: E-value null and calibrated probability per modality pair"),
    "ablate": ("ablate", "train modality subsets x seeds and compare their sequence embeddings on valid"),
    "probe": ("probe", "downstream probes (family, EC, your labels) on the aligned sequence embedding vs baselines"),
}


class _DeprecatedAlias(argparse.Action):
    """An old option name that still works: stores into the new one's dest and says so on stderr."""

    def __init__(self, *args, new: str = "", **kwargs):
        self.new = new
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"note: {option_string} is the old name of {self.new}; it still works", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_embeddings_option(parser: argparse.ArgumentParser, default: str | None = "demo",
                          help: str = "embeddings folder from `oneprot embed`, or 'demo'") -> None:
    """--embeddings FOLDER (dest `embeddings`), with --index kept as a deprecated alias (older commands)."""
    parser.add_argument("--embeddings", default=default, metavar="FOLDER", help=help)
    parser.add_argument("--index", dest="embeddings", action=_DeprecatedAlias, new="--embeddings", help=argparse.SUPPRESS)


def print_summary(summary: dict, as_json: bool) -> None:
    """A command's result dict on stdout: indented JSON, or one `key: value` line per entry."""
    import json

    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        for k, v in summary.items():
            print(f"{k}: {v}")


def _load(module: str):
    return importlib.import_module(f"engine.commands.{module}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="oneprot", description="OneProt: multi-modal protein representations")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = argv[0] if argv and not argv[0].startswith("-") else None
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name == wanted:
            _load(module).add_arguments(p)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        code = _load(args._module).run(args)
    except OneProtError as exc:
        print(f"oneprot {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"oneprot {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
