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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import modelfiles
from ..errors import EncoderError
from ..modelfiles import read_archive, read_config, read_onnx, read_weights, save_checkpoint
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
    path, arrays = read_archive(path, FORMAT, VERSION, "triplet")
    cfg, meta = read_config(path, arrays, TripletConfig.from_json, "triplet")
    graph = str(arrays.get("graph", ""))
    if graph not in GRAPHS or (graph == "full") != (cfg.fine_tune > 0):
        raise EncoderError(f"{path}: the triplet model file's graph kind {graph[:20]!r} does not match its config")
    onnx = read_onnx(path, arrays, "triplet")
    head = read_weights(path, arrays, "h/", "triplet model")
    backbone = read_weights(path, arrays, "b/", "triplet model")
    return ModelFile(cfg, graph, onnx, head, backbone, meta)


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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a triplet checkpoint (InvalidParameterError: missing, unreadable or not one)."""
    return modelfiles.load_checkpoint(path, FORMAT, "triplet")
