"""The crop stage (``--crop auto``): cut an image to the product's box, predicted by a localiser, before encoding.

It plugs in where docs/architecture.md says a localiser goes: the query pipeline's decode step
(:meth:`~.query.QueryPipeline.decode`, ``crop=``) and ingest's prepare step (:func:`._ingest.prepare_image`). The
localiser itself is registered by :mod:`lookalike.localise` (:func:`.extensions.register_localiser`); this module
only resolves which model a request means and applies its box.

- ``crop=None`` or ``"none"``: no crop (the default).
- ``crop="auto"``: the catalogue's localiser, the setting ``crop.model`` (set by ``lookalike index DIR --crop
  auto:MODEL`` or ``put_setting("crop.model", PATH)``); without one an InvalidParameterError says how to set it.
- ``crop="auto:PATH"``: the localiser model file at PATH (library and CLI; the HTTP API takes only ``auto``).

A manual ``box`` always wins over ``crop``. A catalogue with ``crop.model`` set crops every image it indexes from
then on and keeps the box it cropped to as the item's feature ``crop.box`` (``"x,y,w,h"`` in pixels of the upright
image; empty when nothing looked like an object and the whole image was encoded). The box is found and applied on
the image as decoded for the encoders (the catalogue's decode hint), so an item searched by itself with ``crop=
"auto"`` gets its own vector back.
"""

from __future__ import annotations

import dataclasses

from ..errors import InvalidParameterError
from ..images import Box, LoadedImage, crop
from ..validation import short_repr
from .extensions import Localiser, localiser_for

CROP_SETTING = "crop.model"
CROP_FEATURE = "crop.box"
MAX_SPEC = 4096
__all__ = ["CROP_FEATURE", "CROP_SETTING", "crop_loaded", "model_of", "parse_crop", "resolve"]


def parse_crop(value: object) -> str | None:
    """``None``/``"none"``/``""`` → None, ``"auto"`` → ``"auto"``, ``"auto:PATH"`` → ``"auto:PATH"``; anything
    else raises InvalidParameterError."""
    if value is None or value == "" or value == "none":
        return None
    if isinstance(value, str) and len(value) <= MAX_SPEC and (value == "auto" or
                                                              (value.startswith("auto:") and len(value) > 5)):
        return value
    raise InvalidParameterError(f"The 'crop' parameter must be 'auto' (the catalogue's localiser, setting "
                                f"{CROP_SETTING}), 'auto:MODEL' (a localiser model file) or 'none'. Got "
                                f"{short_repr(value)} instead.")


def model_of(value: object, setting: str | None) -> str | None:
    """The localiser model file a crop request means (None: no crop); ``setting`` is the catalogue's
    ``crop.model``."""
    spec = parse_crop(value)
    if spec is None:
        return None
    if spec != "auto":
        return spec[5:]
    if not setting:
        raise InvalidParameterError(
            f"crop=auto needs a localiser model and this catalogue has none (setting {CROP_SETTING}): index with "
            f"`lookalike index DIR --crop auto:MODEL` (train one with `lookalike train localiser`), or name the "
            f"model: crop='auto:MODEL'")
    return setting


def resolve(value: object, setting: str | None) -> Localiser | None:
    """The localiser of a crop request (None: no crop). Raises InvalidParameterError, EncoderError (not a model)."""
    model = model_of(value, setting)
    return None if model is None else localiser_for(model)


def crop_loaded(loaded: LoadedImage, localiser: Localiser) -> tuple[LoadedImage, Box | None]:
    """``loaded`` cut to the box ``localiser`` finds in it, and that box in pixels of the full upright image
    (``loaded.width`` x ``loaded.height``); unchanged and None when it finds no object."""
    image = loaded.image
    found = localiser.crop_box(image)
    if found is None:
        return loaded, None
    cut = crop(image, found, loaded.source)
    sx, sy = loaded.width / image.width, loaded.height / image.height
    x, y = min(int(found.x * sx), loaded.width - 1), min(int(found.y * sy), loaded.height - 1)
    full = Box(x, y, max(1, min(round(found.w * sx), loaded.width - x)),
               max(1, min(round(found.h * sy), loaded.height - y)))
    return dataclasses.replace(loaded, image=cut), full
