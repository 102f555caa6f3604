"""The BinGAN model file and training checkpoints.

A model file (``lookalike train bingan --out MODEL``) is a NumPy ``.npz`` archive read with
``allow_pickle=False``, so opening a hostile file runs no code:

- ``format`` ("lookalike-bingan"), ``version`` (1), ``config`` (BinGANConfig JSON), ``meta`` (JSON: epochs,
  device, wall time, history);
- ``onnx``: the discriminator up to its code layer as an ONNX graph (uint8 bytes). It takes uint8 images
  (n, C, 32, 32) and returns the (n, K) float code-layer outputs; the bits are ``code >= 0`` (the reference
  thresholds at ``>= 0``). The ``bingan:PATH`` encoder runs it with ONNX Runtime; no torch is needed to search.
- ``d/<name>``: the discriminator's float32 weights, so torch can load the model again.

Checkpoints (``MODEL.ckpt``) hold optimiser state and RNG states as well; they are written with ``torch.save`` and
read with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EncoderError, InvalidParameterError
from .config import SIZE, BinGANConfig

FORMAT = "lookalike-bingan"
VERSION = 1
__all__ = ["FORMAT", "VERSION", "ModelFile", "export_onnx", "load_checkpoint", "read_model", "save_checkpoint",
           "write_model"]


@dataclass(frozen=True)
class ModelFile:
    config: BinGANConfig
    onnx: bytes
    weights: dict[str, np.ndarray]
    meta: dict[str, Any]


def export_onnx(disc: Any, cfg: BinGANConfig) -> bytes:
    """The discriminator's code layer as ONNX bytes: uint8 (n, C, 32, 32) → float32 (n, K). Needs torch."""
    import torch

    class _Codes(torch.nn.Module):
        def __init__(self, d: torch.nn.Module) -> None:
            super().__init__()
            self.d = d

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.d((images.float() - 127.5) / 128.0).code

    was_training = disc.training
    wrapper = _Codes(disc).cpu().eval()
    example = torch.zeros((2, cfg.channels, SIZE, SIZE), dtype=torch.uint8)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, (example,), buffer,  # type: ignore[arg-type]  # file-like objects work with dynamo=False
                input_names=["images"], output_names=["code"], dynamic_axes={"images": {0: "n"}, "code": {0: "n"}},
                opset_version=17, dynamo=False,
            )
    finally:
        disc.train(was_training)
    return buffer.getvalue()


def write_model(path: str | Path, disc: Any, cfg: BinGANConfig, meta: dict[str, Any]) -> Path:
    """Write the model file atomically (a temporary file, then rename). Needs torch."""
    path = Path(path)
    weights = {f"d/{k}": v.detach().cpu().float().numpy() for k, v in disc.state_dict().items()}
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT), "version": np.array(VERSION), "config": np.array(cfg.to_json()),
        "meta": np.array(json.dumps(meta)), "onnx": np.frombuffer(export_onnx(disc, cfg), dtype=np.uint8),
        **weights,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return path


def read_model(path: str | Path) -> ModelFile:
    """Read and check a model file without running any code from it.

    Raises:
        EncoderError: missing, unreadable, not a BinGAN model file, another version, or a config that does not
            parse or does not match the weights.
    """
    path = Path(path)
    if not path.is_file():
        raise EncoderError(f"{path}: no such BinGAN model file" + (" (a folder)" if path.is_dir() else ""))
    try:
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an archive")
            with loaded as npz:
                arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise EncoderError(f"{path}: not a BinGAN model file ({type(err).__name__}: {err})") from err
    if str(arrays.get("format", "")) != FORMAT:
        raise EncoderError(f"{path}: not a BinGAN model file (no '{FORMAT}' format marker)")
    version = arrays.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu" or int(version) != VERSION:
        raise EncoderError(f"{path}: BinGAN model file version {version!r}; this lookalike reads version {VERSION}")
    try:
        cfg = BinGANConfig.from_json(str(arrays["config"]))
        meta = json.loads(str(arrays.get("meta", "{}")))
    except (KeyError, TypeError, ValueError, InvalidParameterError) as err:
        raise EncoderError(f"{path}: bad BinGAN config: {err}") from err
    onnx = arrays.get("onnx")
    if onnx is None or onnx.dtype != np.uint8 or onnx.ndim != 1 or onnx.size == 0:
        raise EncoderError(f"{path}: the BinGAN model file has no ONNX graph")
    weights = {k[2:]: v for k, v in arrays.items() if k.startswith("d/")}
    if any(v.dtype != np.float32 for v in weights.values()):
        raise EncoderError(f"{path}: BinGAN weights must be float32")
    return ModelFile(cfg, onnx.tobytes(), weights, meta if isinstance(meta, dict) else {})


def load_discriminator(model: ModelFile) -> Any:
    """A torch Discriminator with the file's weights (eval mode). Needs torch."""
    import torch

    from .nets import Discriminator

    disc = Discriminator(model.config)
    try:
        disc.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.weights.items()})
    except RuntimeError as err:
        raise EncoderError(f"the BinGAN weights do not fit its config: {err}") from err
    return disc.eval()


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename (a crash never leaves half a checkpoint)."""
    import torch

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (tensors and plain containers only).

    Raises:
        InvalidParameterError: missing, unreadable or not a BinGAN checkpoint.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types on a malformed file (struct.error, UnpicklingError…)
        raise InvalidParameterError(f"{path}: not a readable BinGAN checkpoint ({err})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT + "-checkpoint":
        raise InvalidParameterError(f"{path}: not a BinGAN checkpoint")
    return state
