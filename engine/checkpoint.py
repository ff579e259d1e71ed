"""Save and load OneProt checkpoints: `config.json` + `model.safetensors` + `meta.json`.

A checkpoint folder is written to a temp folder and renamed into place, so readers see the old
checkpoint or the new one, never half of one. Weights are read with safetensors only (no pickle).
Backbones re-read from a named source (a frozen bundled text model, frozen released ESM-2 weights)
are left out; `meta.json` lists what was left out so loading can check it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine.errors import OneProtError
from engine.files import atomic_dir
from engine.model import ModelConfig, OneProt
from engine.paths import resolve_checkpoint
from engine.state_dict import load_state_checked

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
META_FILE = "meta.json"
FORMAT_VERSION = 1


def saved_state(model: OneProt) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint stores: everything except externally sourced backbones."""
    skip = model.external_keys()
    # clone(): tied weights (ESM's LM head shares the embedding) must not share storage in safetensors.
    return {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items() if k not in skip}


def checkpoint_config(model: OneProt) -> tuple[dict, dict]:
    """(config to store, provenance). Weight sources whose tensors the checkpoint holds are moved to the
    provenance, so config.json never points at a local pretraining folder that other machines lack."""
    config = json.loads(json.dumps(model.config.to_dict()))
    provenance = {}
    for m, enc in model.encoders.items():
        fields = config["encoders"][m]
        if fields.get("weights") and not enc.external_prefixes():
            provenance[m] = fields["weights"]
            fields["weights"] = None
    return config, provenance


def model_hash(model: OneProt) -> str:
    """A short content hash of the config and the stored weights (names embeddings/indexes by model)."""
    h = hashlib.sha256(json.dumps(checkpoint_config(model)[0], sort_keys=True).encode())
    for k, v in sorted(saved_state(model).items()):
        h.update(k.encode())
        h.update(str(v.dtype).encode())
        h.update(v.float().numpy().tobytes() if v.dtype == torch.bfloat16 else v.numpy().tobytes())
    return h.hexdigest()[:16]


def write_checkpoint_files(model: OneProt, folder: Path, extra: dict | None = None) -> str:
    """Write the three checkpoint files into an existing folder (not atomic; see save_checkpoint)."""
    state = saved_state(model)
    save_file(state, str(folder / WEIGHTS_FILE))
    config, provenance = checkpoint_config(model)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    digest = model_hash(model)
    meta = {
        "format_version": FORMAT_VERSION,
        "model_hash": digest,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "modalities": model.modalities,
        "dim": model.config.dim,
        "external_keys": sorted(model.external_keys()),
        "parameters_saved": int(sum(v.numel() for v in state.values())),
        "initialised_from": provenance,
        # backbones re-read from a named file (e.g. the GPL UniRep weights): name + sha256, never the tensors
        "external_weights": {m: enc.external_source() for m, enc in model.encoders.items()
                             if hasattr(enc, "external_source")},
        **(extra or {}),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))
    return digest


def save_checkpoint(model: OneProt, folder: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write a checkpoint folder atomically (temp folder + rename). `extra` is merged into meta.json."""
    with atomic_dir(folder) as tmp:
        write_checkpoint_files(_unwrap(model), tmp, extra)
    return Path(folder)


def read_json(path: Path) -> dict:
    """A JSON file that must exist and parse, else a OneProtError naming it."""
    if not path.is_file():
        raise OneProtError("file missing from checkpoint", str(path))
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OneProtError(f"corrupted JSON: {exc}", str(path)) from None


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file, or a OneProtError naming the file."""
    if not path.is_file():
        raise OneProtError("file missing from checkpoint", str(path))
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise OneProtError(f"corrupted or truncated safetensors file: {exc}", str(path)) from None


def load_state_into(model: OneProt, state: dict[str, torch.Tensor], where: str) -> None:
    """Copy checkpoint tensors into a model, failing clearly on missing, extra or mis-shaped ones."""
    load_state_checked(model, state, where, optional=model.external_keys(), what="weights for this config")


def convert_upstream(src: str | os.PathLike, out: str | os.PathLike, text_model: str | None = None,
                     esm_heads: dict[str, int] | None = None) -> tuple[Path, dict]:
    """Convert an upstream folder or HF repository (engine.convert_upstream) into a checkpoint folder at `out`;
    returns (folder, report)."""
    from engine.convert_upstream import upstream_model

    model, extra, report = upstream_model(src, text_model=text_model, esm_heads=esm_heads)
    return save_checkpoint(model, out, extra=extra), report


def checkpoint_folder(name_or_path: str | os.PathLike) -> Path:
    """`demo`, a checkpoint folder, or upstream OneProt's release (converted once, cached) -> the folder to read."""
    from engine.convert_upstream import upstream_cache_folder

    target = upstream_cache_folder(name_or_path)
    if target is None:
        return resolve_checkpoint(name_or_path)
    if not (target / META_FILE).is_file():
        convert_upstream(name_or_path, target)
    return target


def load_checkpoint(name_or_path: str | os.PathLike, map_location: str | torch.device = "cpu") -> OneProt:
    """`demo`, a checkpoint folder, or upstream OneProt's release (a folder with config.yaml + pytorch_model.bin,
    or its Hugging Face repository name, converted once by engine.convert_upstream) -> OneProt in eval mode."""
    folder = checkpoint_folder(name_or_path)
    if not folder.is_dir():
        raise OneProtError("a checkpoint is a folder with config.json, model.safetensors, meta.json", str(folder))
    config = read_json(folder / CONFIG_FILE)
    meta = read_json(folder / META_FILE)
    if meta.get("format_version") != FORMAT_VERSION:
        raise OneProtError(f"checkpoint format {meta.get('format_version')!r}, this version reads {FORMAT_VERSION}", str(folder / META_FILE))
    state = read_weights(folder / WEIGHTS_FILE)
    try:
        model = OneProt(ModelConfig.from_dict(config), load_weights=False)
    except OneProtError as exc:
        raise OneProtError(exc.message, f"{folder / CONFIG_FILE} ({exc.where})") from None
    load_state_into(model, state, str(folder / WEIGHTS_FILE))
    model.checkpoint_meta = meta  # so callers can show hash, metrics and provenance
    return model.to(map_location).eval()


def read_meta(name_or_path: str | os.PathLike) -> dict:
    """meta.json of a checkpoint (model_hash, metrics, provenance) without loading weights."""
    return read_json(checkpoint_folder(name_or_path) / META_FILE)


def _unwrap(model: torch.nn.Module) -> OneProt:
    # DDP / torch.compile wrappers keep the real model in `.module` / `._orig_mod`.
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


# ---- training state (optimizer, RNG, data position) for exact resume ----------------------------
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_FILE = "trainer_state.json"


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state -> (tensors for safetensors, JSON-able rest)."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Inverse of optimizer_to_files: a state dict for optimizer.load_state_dict."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """This process's torch / CUDA / numpy / python RNG states as (tensors, JSON-able rest)."""
    import random

    import numpy as np

    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    py = random.getstate()
    return tensors, {"numpy": [kind, int(pos), int(has_gauss), float(gauss)], "python": [py[0], list(py[1]), py[2]]}


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Restore what rng_state captured."""
    import random

    import numpy as np

    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    kind, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, gauss_next = meta["python"]
    random.setstate((version, tuple(state), gauss_next))


def write_rng_file(folder: Path, rank: int) -> None:
    """This rank's RNG state -> folder/rng_rank<rank>.safetensors (+ .json)."""
    tensors, meta = rng_state()
    save_file(tensors, str(folder / f"rng_rank{rank}.safetensors"))
    (folder / f"rng_rank{rank}.json").write_text(json.dumps(meta))


def read_rng_file(folder: Path, rank: int) -> None:
    """Restore this rank's RNG state from a training checkpoint."""
    set_rng_state(read_weights(folder / f"rng_rank{rank}.safetensors"), read_json(folder / f"rng_rank{rank}.json"))


def write_training_files(folder: Path, model: OneProt, optimizer: torch.optim.Optimizer, trainer_state: dict,
                         extra: dict | None = None) -> None:
    """Model checkpoint files + optimizer + trainer state into `folder` (rank 0; not atomic by itself)."""
    write_checkpoint_files(_unwrap(model), folder, extra)
    tensors, meta = optimizer_to_files(optimizer)
    save_file(tensors, str(folder / OPTIMIZER_FILE))
    (folder / "optimizer.json").write_text(json.dumps(meta))
    (folder / TRAINER_FILE).write_text(json.dumps(trainer_state, indent=2))


def read_training_files(folder: Path, model: OneProt, optimizer: torch.optim.Optimizer) -> dict:
    """Load model + optimizer state from a training checkpoint; returns the trainer state dict."""
    load_state_into(_unwrap(model), read_weights(folder / WEIGHTS_FILE), str(folder / WEIGHTS_FILE))
    state = optimizer_from_files(read_weights(folder / OPTIMIZER_FILE), read_json(folder / "optimizer.json"))
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError) as exc:
        raise OneProtError(f"optimizer state does not fit this model: {exc}", str(folder / OPTIMIZER_FILE)) from None
    return read_json(folder / TRAINER_FILE)


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a model checkpoint (e.g. RUN/model) to `dst` atomically after checking that it loads.

    Only the three model files travel; training state (optimizer, RNG) stays in the run folder.
    """
    import shutil

    src = resolve_checkpoint(src)
    model = load_checkpoint(src)
    meta = read_json(src / META_FILE)
    if model_hash(model) != meta.get("model_hash"):
        raise OneProtError("weights do not match the model_hash in meta.json", str(src))
    with atomic_dir(dst) as tmp:
        for name in (CONFIG_FILE, WEIGHTS_FILE, META_FILE):
            shutil.copyfile(src / name, tmp / name)
    return Path(dst)
