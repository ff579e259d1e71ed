"""Upstream OneProt's released checkpoint -> this project's checkpoint format (`oneprot convert-upstream`).

Upstream publishes a folder (Hugging Face repository) with `config.yaml` (its Hydra model config) and
`pytorch_model.bin` (the Lightning module's state dict: `network.<component>.<...>`). Conversion:

  - reads the weights with torch.load(weights_only=True) (no pickled code runs),
  - infers every architecture from tensor shapes (ESM layers/width/vocabulary, ProNet level and sizes,
    head kinds), taking from config.yaml only what shapes cannot tell (pooling, attention heads, the text model),
  - maps each upstream key to one of ours (transformers ESM names -> fair-esm names, DIG ProNet names
    unchanged, the text BertModel as is), checks every shape, and accounts for every upstream key:
    consumed, checked equal to ours (rotary frequencies, the fixed temperature) or reported as unused,
  - writes a normal checkpoint (safetensors + config.json + meta.json with the model hash and this report).

Components: sequence -> sequence, struct_token -> structure_tokens, struct_graph -> structure,
pocket -> pocket, text -> text.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import torch

from engine.errors import OneProtError

UPSTREAM_CONFIG = "config.yaml"
UPSTREAM_WEIGHTS = "pytorch_model.bin"
COMPONENTS = {"sequence": "sequence", "struct_token": "structure_tokens", "struct_graph": "structure",
              "pocket": "pocket", "text": "text"}
_HF_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# transformers EsmModel names -> fair-esm ESM2 names
_ESM_RULES = [
    (r"^embeddings\.word_embeddings\.weight$", "embed_tokens.weight"),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.query\.(weight|bias)$", r"layers.\1.self_attn.q_proj.\2"),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.key\.(weight|bias)$", r"layers.\1.self_attn.k_proj.\2"),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.value\.(weight|bias)$", r"layers.\1.self_attn.v_proj.\2"),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$", r"layers.\1.self_attn.out_proj.\2"),
    (r"^encoder\.layer\.(\d+)\.attention\.LayerNorm\.(weight|bias)$", r"layers.\1.self_attn_layer_norm.\2"),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$", r"layers.\1.fc1.\2"),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$", r"layers.\1.fc2.\2"),
    (r"^encoder\.layer\.(\d+)\.LayerNorm\.(weight|bias)$", r"layers.\1.final_layer_norm.\2"),
    (r"^encoder\.emb_layer_norm_after\.(weight|bias)$", r"emb_layer_norm_after.\1"),
    (r"^contact_head\.regression\.(weight|bias)$", r"contact_head.regression.\1"),
]
_UNUSED = {  # upstream tensors our model has no use for, and why
    "pooler.": "transformers pooler, unused by upstream's CLS / mean / attention pooling",
    "embeddings.position_ids": "position-id buffer (ESM-2 and BERT positions are recomputed)",
    "embeddings.token_type_ids": "token-type buffer",
}


# ---- reading ---------------------------------------------------------------------------------------
def is_upstream_folder(path: str | os.PathLike) -> bool:
    """True for a folder holding upstream's config.yaml and pytorch_model.bin (and not our config.json)."""
    p = Path(path)
    return p.is_dir() and (p / UPSTREAM_WEIGHTS).is_file() and (p / UPSTREAM_CONFIG).is_file() \
        and not (p / "config.json").is_file()


def fetch_upstream(src: str | os.PathLike) -> Path:
    """A local upstream folder as is, or a Hugging Face repository name downloaded to the HF cache."""
    p = Path(src).expanduser()
    if p.exists():
        if not is_upstream_folder(p):
            raise OneProtError(f"expected a folder with {UPSTREAM_CONFIG} and {UPSTREAM_WEIGHTS}", str(p))
        return p
    if not _HF_REPO.match(str(src)):
        raise OneProtError("no such folder, and not a Hugging Face repository name (owner/name)", str(src))
    try:
        from huggingface_hub import hf_hub_download

        files = [hf_hub_download(repo_id=str(src), filename=f) for f in (UPSTREAM_CONFIG, UPSTREAM_WEIGHTS)]
    except Exception as exc:  # noqa: BLE001 - offline, missing repository, auth: many exception types
        raise OneProtError(f"no such local folder, and could not download {UPSTREAM_CONFIG} and {UPSTREAM_WEIGHTS} "
                           f"from a Hugging Face repository of that name (needs internet): {str(exc).splitlines()[0]}",
                           str(src)) from None
    return Path(files[0]).parent


def read_upstream(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config.yaml as a dict, state dict) of an upstream folder; clear errors naming the file."""
    import yaml

    try:
        cfg = yaml.safe_load((folder / UPSTREAM_CONFIG).read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise OneProtError(f"cannot parse YAML: {str(exc).splitlines()[0]}", str(folder / UPSTREAM_CONFIG)) from None
    try:
        state = torch.load(folder / UPSTREAM_WEIGHTS, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt zip, pickled classes refused by weights_only, truncation
        raise OneProtError(f"cannot read with torch.load(weights_only=True): {str(exc).splitlines()[0]}",
                           str(folder / UPSTREAM_WEIGHTS)) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a Lightning .ckpt layout
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise OneProtError("expected a state dict of tensors", str(folder / UPSTREAM_WEIGHTS))
    if not any(k.startswith("network.") for k in state):
        raise OneProtError("no 'network.<component>.' keys: not an upstream OneProt state dict",
                           str(folder / UPSTREAM_WEIGHTS))
    return cfg, state


def _component_configs(cfg: dict) -> dict[str, dict]:
    model = cfg.get("model", cfg) if isinstance(cfg, dict) else {}
    comps = model.get("components", {}) if isinstance(model, dict) else {}
    return {k: (v if isinstance(v, dict) else {}) for k, v in (comps or {}).items()}


# ---- per-component conversion ----------------------------------------------------------------------
class _Report:
    """Every upstream key ends in exactly one of these lists."""

    def __init__(self):
        self.consumed: list[str] = []
        self.checked: list[str] = []
        self.unused: dict[str, str] = {}

    def unused_reason(self, key: str) -> str | None:
        return next((why for pat, why in _UNUSED.items() if pat in key), None)


def _esm_heads(comp: dict, dim: int, heads: int | None, where: str) -> int:
    from engine.encoders.esm_arch import RELEASED_ESM2

    if heads:
        return heads
    name = str(comp.get("model_name_or_path") or "")
    short = name.split("/")[-1]
    if short in RELEASED_ESM2 and RELEASED_ESM2[short][1] == dim:
        return RELEASED_ESM2[short][2]
    cfg_file = Path(name).expanduser() / "config.json"
    if cfg_file.is_file():
        return int(json.loads(cfg_file.read_text())["num_attention_heads"])
    raise OneProtError(f"cannot tell the attention heads of a {dim}-wide ESM from model_name_or_path {name!r}; "
                       "give --esm-heads", where)


def _esm(comp: dict, sub: dict[str, torch.Tensor], modality: str, rep: _Report, prefix: str,
         heads: int | None) -> tuple[dict, dict[str, torch.Tensor]]:
    """transformers EsmModel (+ pooling) tensors -> our encoder config and `encoders.<m>.` tensors."""
    if any("lora_" in k or "base_model.model." in k for k in sub):
        raise OneProtError("LoRA-wrapped ESM weights are not supported (the published run trains none)", prefix)
    emb = sub.get("transformer.embeddings.word_embeddings.weight")
    if emb is None:
        raise OneProtError("missing transformer.embeddings.word_embeddings.weight", prefix)
    vocab, dim = emb.shape
    layers = 1 + max(int(m.group(1)) for k in sub if (m := re.match(r"transformer\.encoder\.layer\.(\d+)\.", k)))
    if vocab not in (33, 54):
        raise OneProtError(f"an ESM vocabulary of {vocab} tokens is neither ESM-2's (33) nor upstream's 3Di (54)", prefix)
    kind = str(comp.get("pooling_type") or "mean")
    pooling = {"attention1d": "attention1d", "mean": "mean_bos_eos"}.get(kind)
    if pooling is None:
        raise OneProtError(f"pooling_type {kind!r} is not supported for ESM components (attention1d, mean)", prefix)
    config = {"weights": None, "layers": layers, "dim": int(dim), "heads": _esm_heads(comp, int(dim), heads, prefix),
              "pooling": pooling, "freeze": bool(comp.get("frozen", modality == "sequence")), "max_length": 1022}
    if vocab == 54:
        config["alphabet"] = "3di_upstream"
    out: dict[str, torch.Tensor] = {}
    for key, value in sub.items():
        full = prefix + key
        if key.startswith("transformer."):
            inner = key[len("transformer."):]
            if inner.endswith("inv_freq"):
                rep.checked.append(full)  # rotary frequencies are fixed; checked against ours after building
                out[f"__inv_freq__{full}"] = value
                continue
            target = next((re.sub(p, r, inner) for p, r in _ESM_RULES if re.match(p, inner)), None)
            if target is not None:
                out[f"encoders.{modality}.esm.{target}"] = value
                rep.consumed.append(full)
            elif (why := rep.unused_reason(inner)) is not None:
                rep.unused[full] = why
            else:
                raise OneProtError(f"unknown ESM tensor {full}", prefix)
        elif key in ("pooling.layer.weight", "pooling.layer.bias"):
            out[f"encoders.{modality}.pool.{key[len('pooling.'):]}"] = value.reshape(value.shape[0], -1) \
                if key.endswith("weight") else value  # Conv1d (1, H, 1) -> Linear (1, H)
            rep.consumed.append(full)
    return config, out


def _pronet(comp: dict, sub: dict[str, torch.Tensor], modality: str, rep: _Report, prefix: str) -> tuple[dict, dict]:
    """DIG ProNet tensors (same names as ours) -> our ProNet config and tensors."""
    emb = sub.get("encoder.embedding.weight")
    if emb is None:
        raise OneProtError("missing encoder.embedding.weight (not a DIG ProNet)", prefix)
    hidden = emb.shape[1] if emb.dim() == 2 and "encoder.embedding.bias" not in sub else emb.shape[0]
    width = emb.shape[1] if "encoder.embedding.bias" in sub else None
    level = {None: "aminoacid", 32: "backbone", 40: "allatom"}.get(width)
    if level is None:
        raise OneProtError(f"embedding input width {width} matches no ProNet level (32 backbone, 40 all-atom)", prefix)
    blocks = 1 + max(int(m.group(1)) for k in sub if (m := re.match(r"encoder\.interaction_blocks\.(\d+)\.", k)))
    f0 = sub["encoder.interaction_blocks.0.lin_feature0.lin1.weight"]
    f1 = sub["encoder.interaction_blocks.0.lin_feature1.lin1.weight"]
    # inputs: k * n^2 (distance + polar angles) and 3 * k * n (three Euler angles; k * n for the amino-acid level)
    n_sph = round(f0.shape[1] / (f1.shape[1] / (1 if level == "aminoacid" else 3)))
    enc = comp.get("encoder") if isinstance(comp.get("encoder"), dict) else {}
    config = {
        "type": "pronet", "level": level, "num_blocks": blocks, "hidden_channels": int(hidden),
        "out_channels": int(sub["encoder.lin_out.weight"].shape[0]), "mid_emb": int(f0.shape[0]),
        "num_radial": int(f0.shape[1] // (n_sph * n_sph)), "num_spherical": int(n_sph),
        "cutoff": float(enc.get("cutoff", 10.0)), "max_neighbors": int(enc.get("max_num_neighbors", 32)),
        "int_emb_layers": 1 + max(int(m.group(1)) for k in sub if (m := re.match(r"encoder\.interaction_blocks\.0\.lins_cat\.(\d+)\.", k))),
        "out_layers": 1 + sum(1 for k in sub if re.match(r"encoder\.lins_out\.\d+\.weight$", k)),
        "num_pos_emb": int(sub["encoder.interaction_blocks.0.lin_feature2.lin1.weight"].shape[1]),
        "dropout": float(enc.get("dropout", 0.25)), "out_dropout": float(comp.get("dropout", 0.25)),
        "pocket_residues": 100 if modality == "pocket" else 0,  # upstream's pockets_100_residues.h5
    }
    out = {}
    for key, value in sub.items():
        if key.startswith("encoder."):
            out[f"encoders.{modality}.{key[len('encoder.'):]}"] = value
            rep.consumed.append(prefix + key)
    return config, out


def _text(comp: dict, sub: dict[str, torch.Tensor], rep: _Report, prefix: str, text_model: str | None) -> tuple[dict, dict]:
    """BertModel tensors -> our text config (backbone stored in the checkpoint) and tensors."""
    kind = str(comp.get("pooling_type") or "cls")
    if kind != "cls":
        raise OneProtError(f"text pooling_type {kind!r} is not supported (the published run uses cls)", prefix)
    config = {"model": text_model or str(comp.get("model_name_or_path") or ""), "pooling": "cls", "freeze": True,
              "max_length": 512, "store_backbone": True}
    if not config["model"]:
        raise OneProtError("config.yaml names no text model; give --text-model", prefix)
    out = {}
    for key, value in sub.items():
        if not key.startswith("transformer."):
            continue
        inner = key[len("transformer."):]
        if (why := rep.unused_reason(inner)) is not None:
            rep.unused[prefix + key] = why
        else:
            out[f"encoders.text.backbone.{inner}"] = value
            rep.consumed.append(prefix + key)
    return config, out


def _head(sub: dict[str, torch.Tensor], modality: str, rep: _Report, prefix: str) -> tuple[str, int, dict]:
    """proj.* tensors -> (our head kind, output dim, tensors)."""
    keys = sorted(k for k in sub if k.startswith("proj."))
    idx = sorted({int(k.split(".")[1]) for k in keys})
    if idx == [0, 1]:
        kind, last = "ln_linear", 1
    elif idx == [0, 1, 3, 4]:
        kind, last = "ln_mlp", 4
    else:
        raise OneProtError(f"projection layers {idx} are neither upstream's linear (0, 1) nor mlp (0..4) head", prefix)
    if any(k.endswith(".bias") and k.split(".")[1] in ("1", "4") for k in keys):
        raise OneProtError("upstream's projection Linears have no bias; this one has", prefix)
    out = {f"heads.{modality}.{k[len('proj.'):]}": sub[k] for k in keys}
    rep.consumed.extend(prefix + k for k in keys)
    return kind, int(sub[f"proj.{last}.weight"].shape[0]), out


# ---- the whole model -------------------------------------------------------------------------------
def convert_state(cfg: dict, state: dict[str, torch.Tensor], text_model: str | None = None,
                  esm_heads: dict[str, int] | None = None):
    """Upstream config + state -> (OneProt with the upstream weights, report dict)."""
    from engine.model import ModelConfig, OneProt
    from engine.state_dict import load_state_checked

    rep, comps, mapped = _Report(), _component_configs(cfg), {}
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        parts = key.split(".", 2)
        if len(parts) < 3 or parts[0] != "network" or parts[1] not in COMPONENTS:
            rep.unused[key] = "not under network.<sequence|struct_token|struct_graph|pocket|text>"
            continue
        groups.setdefault(parts[1], {})[parts[2]] = value
    if "sequence" not in groups:
        raise OneProtError("the checkpoint has no sequence component (the anchor)", "network.sequence")
    encoders, heads, scales = {}, {}, {}
    dims = set()
    for up, sub in groups.items():
        m, prefix, comp = COMPONENTS[up], f"network.{up}.", comps.get(up, {})
        if m in ("sequence", "structure_tokens"):
            enc_cfg, tensors = _esm(comp, sub, m, rep, prefix, (esm_heads or {}).get(m))
        elif m in ("structure", "pocket"):
            enc_cfg, tensors = _pronet(comp, sub, m, rep, prefix)
        else:
            enc_cfg, tensors = _text(comp, sub, rep, prefix, text_model)
        kind, dim, head_tensors = _head(sub, m, rep, prefix)
        encoders[m], heads[m] = enc_cfg, kind
        dims.add(dim)
        mapped.update(tensors)
        mapped.update(head_tensors)
        for key in sub:
            if key.endswith("log_logit_scale"):
                scales[prefix + key] = float(sub[key])
                rep.checked.append(prefix + key)
    if len(dims) != 1:
        raise OneProtError(f"projection heads disagree on the shared dimension: {sorted(dims)}", "proj")
    values = set(round(v, 6) for v in scales.values())
    if len(values) > 1:
        raise OneProtError(f"modalities have different fixed temperatures {scales}; this model has one", "log_logit_scale")
    temperature = math.exp(-values.pop()) if values else 0.07
    default_head = heads["sequence"]
    config = ModelConfig(encoders=encoders, dim=dims.pop(), head=default_head,
                         heads={m: k for m, k in heads.items() if k != default_head},
                         temperature=temperature, learn_temperature=False)
    with torch.random.fork_rng():  # tensors upstream lacks (the unused ESM LM head) start the same every time,
        torch.manual_seed(0)       # so converting one release twice gives one model hash
        model = OneProt(config, load_weights=False)
    own = model.state_dict()
    for key in [k for k in mapped if k.startswith("__inv_freq__")]:
        value, modality = mapped.pop(key), COMPONENTS[key.split(".")[1]]
        ours = own[f"encoders.{modality}.esm.layers.0.self_attn.rot_emb.inv_freq"]
        if value.shape != ours.shape or not torch.allclose(value.float(), ours.float(), rtol=1e-5):
            raise OneProtError("rotary frequencies differ from ESM-2's", key[len("__inv_freq__"):])
    # not in upstream: fair-esm's masked-LM head (unused for embeddings; its weight is tied to the embedding)
    # and the rotary frequencies (computed, checked equal above)
    left = sorted(k for k in own if k not in mapped and (".esm.lm_head." in k or ".rot_emb.inv_freq" in k))
    mapped["log_inv_temperature"] = own["log_inv_temperature"]  # set from upstream's log_logit_scale above
    load_state_checked(model, mapped, "upstream checkpoint", optional=set(left), what="converted upstream tensors")
    report = {"upstream_tensors": len(state), "consumed": len(rep.consumed), "checked_equal": sorted(rep.checked),
              "unused": rep.unused, "left_at_initialisation": left,
              "note": "left_at_initialisation: the ESM masked-LM head (unused for embeddings) and rotary "
                      "frequencies (recomputed; checked equal where upstream stores them)"}
    accounted = len(rep.consumed) + len(rep.checked) + len(rep.unused)
    if accounted != len(state):
        raise OneProtError(f"{len(state) - accounted} upstream tensors were neither consumed nor reported", "convert")
    return model.eval(), report


def upstream_model(src: str | os.PathLike, text_model: str | None = None,
                   esm_heads: dict[str, int] | None = None) -> tuple[Any, dict, dict]:
    """An upstream folder or HF repository -> (model, meta.json extras, report); engine.checkpoint.convert_upstream
    saves it (this module never imports engine.checkpoint, which reads upstream names through it)."""
    folder = fetch_upstream(src)
    cfg, state = read_upstream(folder)
    model, report = convert_state(cfg, state, text_model=text_model, esm_heads=esm_heads)
    digest = hashlib.sha256()
    with open(folder / UPSTREAM_WEIGHTS, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    extra = {"converted_from": str(src), "upstream_weights_sha256": digest.hexdigest(), "conversion": report}
    return model, extra, report


def upstream_cache_folder(name_or_path: Any) -> Path | None:
    """Where load_checkpoint keeps the conversion of an upstream folder or HF repository name (converted once);
    None when `name_or_path` is neither. Keyed by the folder's path and its weights file's size and modification
    time (or by the repository name), under ONEPROT_CACHE/upstream/."""
    from engine.paths import CACHE_DIR

    p = Path(str(name_or_path)).expanduser()
    if is_upstream_folder(p):
        st = (p / UPSTREAM_WEIGHTS).stat()
        key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    elif not p.exists() and _HF_REPO.match(str(name_or_path)):
        key = str(name_or_path)
    else:
        return None
    return CACHE_DIR / "upstream" / hashlib.sha256(key.encode()).hexdigest()[:16]
