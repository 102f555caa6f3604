"""The triplet model file and training checkpoints.

A model file (``lookalike train triplet --out MODEL``) is a NumPy ``.npz`` archive read with
``allow_pickle=False``, so opening a hostile file runs no code:

- ``format`` ("lookalike-triplet"), ``version`` (1), ``config`` (TripletConfig JSON), ``meta`` (JSON: epochs,
  device, wall time, validation triplet accuracy before and after, history);
- ``graph``: ``"head"`` or ``"full"``, and ``onnx``: the ONNX graph (uint8 bytes). ``head`` (a frozen backbone)
  maps efficientnet-lite0's float32 (n, 1280) features (input ``features``) to (n, dim) unit rows; the encoder
  runs the ``efficientnet-lite0`` encoder first. ``full`` (a fine-tuned model) is the whole network: uint8
  (n, 224, 224, 3) images (input ``images``) to (n, dim) unit rows;
- ``h/<name>``: the head's float32 weights, and for a fine-tuned model ``b/<name>``: the trained part of
  efficientnet-lite0 (its last blocks and head convolution), so torch can load the model again.

Checkpoints (``MODEL.ckpt``) hold the optimiser and RNG states as well; they are written with ``torch.save`` and
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
from .config import FEATURE_DIM, TripletConfig

FORMAT = "lookalike-triplet"
VERSION = 1
GRAPHS = ("head", "full")
__all__ = ["FORMAT", "VERSION", "ModelFile", "export_onnx", "load_checkpoint", "load_head", "read_model",
           "save_checkpoint", "write_model"]


@dataclass(frozen=True)
class ModelFile:
    config: TripletConfig
    graph: str
    onnx: bytes
    head: dict[str, np.ndarray]
    backbone: dict[str, np.ndarray]
    meta: dict[str, Any]


def export_onnx(head: Any, net: Any = None) -> tuple[str, bytes]:
    """(graph kind, ONNX bytes) of the head alone (``net`` None) or of the whole fine-tuned network. Needs torch."""
    import torch

    from .nets import FullModel

    if net is None:
        module, example, names = head, torch.zeros((2, FEATURE_DIM)), ("features", "embedding")
    else:
        module, example, names = FullModel(net.trunk, head), torch.zeros((2, 224, 224, 3), dtype=torch.uint8), \
            ("images", "embedding")
    modes = [(m, m.training) for m in module.modules()]  # each module's own mode (the trunk's stays eval)
    module = module.cpu().eval()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, (example,), buffer,  # type: ignore[arg-type]  # file-like objects work with dynamo=False
                input_names=[names[0]], output_names=[names[1]],
                dynamic_axes={names[0]: {0: "n"}, names[1]: {0: "n"}}, opset_version=17, dynamo=False,
            )
    finally:
        for m, training in modes:
            m.training = training
    return ("head" if net is None else "full"), buffer.getvalue()


def write_model(path: str | Path, head: Any, cfg: TripletConfig, meta: dict[str, Any], net: Any = None) -> Path:
    """Write the model file atomically (a temporary file, then rename). Needs torch."""
    path = Path(path)
    graph, onnx = export_onnx(head, net)
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT), "version": np.array(VERSION), "config": np.array(cfg.to_json()),
        "meta": np.array(json.dumps(meta)), "graph": np.array(graph), "onnx": np.frombuffer(onnx, dtype=np.uint8),
        **{f"h/{k}": v.detach().cpu().float().numpy() for k, v in head.state_dict().items()},
    }
    if net is not None:
        arrays.update({f"b/{k}": v.detach().cpu().float().numpy() for k, v in net.suffix_state().items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return path


def read_model(path: str | Path) -> ModelFile:
    """Read and check a model file without running any code from it.

    Raises:
        EncoderError: missing, unreadable, truncated, not a triplet model file, another version, or a config that
            does not parse.
    """
    path = Path(path)
    if not path.is_file():
        raise EncoderError(f"{path}: no such triplet model file" + (" (a folder)" if path.is_dir() else ""))
    try:
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an archive")
            with loaded as npz:
                arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise EncoderError(f"{path}: not a triplet model file, or a truncated one ({type(err).__name__}: "
                           f"{err})") from err
    except Exception as err:  # zlib.error and friends from a damaged member
        raise EncoderError(f"{path}: a damaged triplet model file ({type(err).__name__}: {err})") from err
    fmt = str(arrays.get("format", ""))
    if fmt != FORMAT:
        other = f" (its format is {fmt[:40]!r})" if fmt else f" (no '{FORMAT}' format marker)"
        raise EncoderError(f"{path}: not a triplet model file{other}")
    version = arrays.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu" or int(version) != VERSION:
        raise EncoderError(f"{path}: triplet model file version {version!r}; this lookalike reads version {VERSION}")
    try:
        cfg = TripletConfig.from_json(str(arrays["config"]))
        meta = json.loads(str(arrays.get("meta", "{}")))
    except (KeyError, TypeError, ValueError, InvalidParameterError) as err:
        raise EncoderError(f"{path}: bad triplet config: {err}") from err
    graph = str(arrays.get("graph", ""))
    if graph not in GRAPHS or (graph == "full") != (cfg.fine_tune > 0):
        raise EncoderError(f"{path}: the triplet model file's graph kind {graph[:20]!r} does not match its config")
    onnx = arrays.get("onnx")
    if onnx is None or onnx.dtype != np.uint8 or onnx.ndim != 1 or onnx.size == 0:
        raise EncoderError(f"{path}: the triplet model file has no ONNX graph")
    head = {k[2:]: v for k, v in arrays.items() if k.startswith("h/")}
    backbone = {k[2:]: v for k, v in arrays.items() if k.startswith("b/")}
    if any(v.dtype != np.float32 for v in (*head.values(), *backbone.values())):
        raise EncoderError(f"{path}: triplet model weights must be float32")
    return ModelFile(cfg, graph, onnx.tobytes(), head, backbone, meta if isinstance(meta, dict) else {})


def load_head(model: ModelFile) -> tuple[Any, Any]:
    """(ProjectionHead, FineTuneNet or None) with the file's weights, in eval mode. Needs torch."""
    import torch

    from .nets import FineTuneNet, ProjectionHead

    head = ProjectionHead(model.config)
    net = FineTuneNet(model.config.fine_tune) if model.config.fine_tune else None
    try:
        head.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.head.items()})
        if net is not None:
            state = net.trunk.state_dict()
            state.update({k: torch.from_numpy(np.array(v)) for k, v in model.backbone.items()})
            net.trunk.load_state_dict(state)
    except RuntimeError as err:
        raise EncoderError(f"the triplet model's weights do not fit its config: {err}") from err
    return head.eval(), (net.eval() if net is not None else None)


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
        InvalidParameterError: missing, unreadable or not a triplet checkpoint.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types on a malformed file (struct.error, UnpicklingError…)
        raise InvalidParameterError(f"{path}: not a readable triplet checkpoint ({err})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT + "-checkpoint":
        raise InvalidParameterError(f"{path}: not a triplet checkpoint")
    return state
