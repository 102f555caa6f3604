"""What the trained models share (BinGAN, the triplet embedding, the localiser): model files, an ``.npz`` archive
read without pickle, checked for its format marker and version, holding a JSON config, an ONNX graph and float32
weights; torch checkpoints written atomically and read with ``weights_only=True``; and the training device.

Each model package keeps its own format name, version, config class and weight layout; the checks and their
messages ("<path>: not a triplet model file ...") are the same for all, with the model's name in them.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EncoderError, InvalidParameterError

__all__ = ["config_fields", "load_checkpoint", "read_archive", "read_config", "read_onnx", "read_weights",
           "resolve_device", "save_checkpoint"]


def read_archive(path: str | Path, fmt: str, version: int, noun: str) -> tuple[Path, dict[str, np.ndarray]]:
    """``(path, arrays)`` of a model file of format ``fmt`` and ``version``; ``noun`` names the model in errors.

    Raises:
        EncoderError: missing, a folder, unreadable, truncated or damaged, another format, another version.
    """
    path = Path(path)
    if not path.is_file():
        raise EncoderError(f"{path}: no such {noun} model file" + (" (a folder)" if path.is_dir() else ""))
    try:
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an archive")
            with loaded as npz:
                arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise EncoderError(f"{path}: not a {noun} model file, or a truncated one ({type(err).__name__}: "
                           f"{err})") from err
    except Exception as err:  # zlib.error and friends from a damaged member
        raise EncoderError(f"{path}: a damaged {noun} model file ({type(err).__name__}: {err})") from err
    found = str(arrays.get("format", ""))
    if found != fmt:
        other = f" (its format is {found[:40]!r})" if found else f" (no '{fmt}' format marker)"
        raise EncoderError(f"{path}: not a {noun} model file{other}")
    stored = arrays.get("version")
    if stored is None or stored.shape != () or stored.dtype.kind not in "iu" or int(stored) != version:
        raise EncoderError(f"{path}: {noun} model file version {stored!r}; this lookalike reads version {version}")
    return path, arrays


def config_fields(cls: type, text: str, noun: str, floats: tuple[str, ...]) -> dict[str, Any]:
    """The fields of a config dataclass ``cls`` stored as JSON ``text``, for ``cls(**fields)`` (which checks their
    values): refuses what is not a JSON object and unknown keys; integers in the ``floats`` fields become floats
    (JSON writes 1.0 as 1). Raises InvalidParameterError."""
    import dataclasses

    try:
        raw = json.loads(text)
    except (ValueError, TypeError) as err:
        raise InvalidParameterError(f"the {noun} config is not valid JSON: {err}") from err
    if not isinstance(raw, dict):
        raise InvalidParameterError(f"the {noun} config must be a JSON object")
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise InvalidParameterError(f"the {noun} config has unknown keys: {', '.join(unknown)}")
    for key in floats:
        value = raw.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            raw[key] = float(value)
    return raw


def read_config(path: Path, arrays: dict[str, np.ndarray], from_json: Callable[[str], Any],
                noun: str) -> tuple[Any, dict[str, Any]]:
    """``(config, meta)``: the archive's config through ``from_json`` and its JSON metadata (a dict)."""
    try:
        cfg = from_json(str(arrays["config"]))
        meta = json.loads(str(arrays.get("meta", "{}")))
    except (KeyError, TypeError, ValueError, InvalidParameterError) as err:
        raise EncoderError(f"{path}: bad {noun} config: {err}") from err
    return cfg, meta if isinstance(meta, dict) else {}


def read_onnx(path: Path, arrays: dict[str, np.ndarray], noun: str, key: str = "onnx") -> bytes:
    """The ONNX graph stored under ``key`` (raw bytes)."""
    onnx = arrays.get(key)
    if onnx is None or onnx.dtype != np.uint8 or onnx.ndim != 1 or onnx.size == 0:
        raise EncoderError(f"{path}: the {noun} model file has no ONNX graph")
    return onnx.tobytes()


def read_weights(path: Path, arrays: dict[str, np.ndarray], prefix: str, noun: str) -> dict[str, np.ndarray]:
    """The float32 arrays stored as ``prefix + name``, by name."""
    weights = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    if any(v.dtype != np.float32 for v in weights.values()):
        raise EncoderError(f"{path}: {noun} weights must be float32")
    return weights


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename (a crash never leaves half a checkpoint)."""
    import torch

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, fmt: str, noun: str) -> dict[str, Any]:
    """Read a checkpoint of ``fmt`` with ``weights_only=True`` (tensors and plain containers only).

    Raises:
        InvalidParameterError: missing, unreadable or not a checkpoint of this model.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types on a malformed file (struct.error, UnpicklingError…)
        raise InvalidParameterError(f"{path}: not a readable {noun} checkpoint ({err})") from err
    if not isinstance(state, dict) or state.get("format") != fmt + "-checkpoint":
        raise InvalidParameterError(f"{path}: not a {noun} checkpoint")
    return state


def resolve_device(device: str = "auto") -> Any:
    """The torch device to train on: ``"auto"`` → CUDA when available, else CPU; ``"cpu"``, ``"cuda"``,
    ``"cuda:1"`` as given (checked). Raises InvalidParameterError."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InvalidParameterError(f"--device: expected auto, cpu or cuda[:N]. Got {device!r}.") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("--device cuda: no CUDA device is available here (use --device auto or cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise InvalidParameterError(f"--device: expected auto, cpu or cuda[:N]. Got {device!r}.")
    return dev
