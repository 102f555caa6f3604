"""The crop stage (``--crop auto``): cut an image to the product's box, predicted by a localiser, before encoding.

It plugs in where docs/architecture.md says a localiser goes: the query pipeline's decode step
(:meth:`~.query.QueryPipeline.decode`, ``crop=``) and ingest's prepare step (:func:`._ingest.prepare_image`). The
localiser itself is registered by :mod:`lookalike.localise` (:func:`.extensions.register_localiser`); this module
only resolves which model a request means and applies its box.

- ``crop=None`` or ``"none"``: no crop (the default).
- ``crop="auto"``: the catalogue's localiser, the setting ``crop.model`` (set by ``lookalike index DIR --crop
  auto:MODEL`` or ``put_setting("crop.model", PATH)``); without one an InvalidParameterError says how to set it.
- ``crop="auto:PATH"``: the localiser model file at PATH (library and CLI; the HTTP API takes only ``auto``).
- ``crop="auto,mask"`` / ``"auto:PATH,mask"``: the same box, with the background inside it removed (GrabCut
  initialised by the box, the removed pixels painted their median colour: :mod:`lookalike.localise.mask`, its
  knobs chosen on validation composites; BENCHMARKS.md). At ingest, the setting ``crop.mask`` (``grabcut``; set
  by ``lookalike index DIR --crop auto:MODEL,mask``) masks every item the catalogue indexes; a search of such a
  catalogue asks for the same with ``crop="auto,mask"`` (the HTTP API takes ``auto,mask`` too).

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
MASK_SETTING = "crop.mask"  # "grabcut": ingest removes the background inside the box; unset: it does not
MASK_VALUE = "grabcut"
MASK_SUFFIX = ",mask"
CROP_FEATURE = "crop.box"
MAX_SPEC = 4096
__all__ = ["CROP_FEATURE", "CROP_SETTING", "MASK_SETTING", "MASK_SUFFIX", "MASK_VALUE", "crop_loaded", "mask_setting",
           "masks", "model_of", "parse_crop", "resolve"]


def parse_crop(value: object) -> str | None:
    """``None``/``"none"``/``""`` → None; ``"auto"``, ``"auto:PATH"``, each optionally followed by ``",mask"``,
    unchanged; anything else raises InvalidParameterError."""
    if value is None or value == "" or value == "none":
        return None
    if isinstance(value, str) and len(value) <= MAX_SPEC:
        base = value.removesuffix(MASK_SUFFIX)
        if base == "auto" or (base.startswith("auto:") and len(base) > 5):
            return value
    raise InvalidParameterError(f"The 'crop' parameter must be 'auto' (the catalogue's localiser, setting "
                                f"{CROP_SETTING}), 'auto:MODEL' (a localiser model file), either followed by "
                                f"',mask' (remove the background inside the box), or 'none'. Got "
                                f"{short_repr(value)} instead.")


def masks(value: object) -> bool:
    """Whether a crop request removes the background inside the box (``",mask"``)."""
    spec = parse_crop(value)
    return spec is not None and spec.endswith(MASK_SUFFIX)


def mask_setting(value: str | None) -> bool:
    """Whether the catalogue's ``crop.mask`` setting (None or ``grabcut``) masks at ingest; InvalidParameterError
    for any other value (a typo must not silently index unmasked)."""
    if value is None or value == "":
        return False
    if value == MASK_VALUE:
        return True
    raise InvalidParameterError(f"The setting {MASK_SETTING} must be {MASK_VALUE!r} or unset. Got "
                                f"{short_repr(value)} instead.")


def model_of(value: object, setting: str | None) -> str | None:
    """The localiser model file a crop request means (None: no crop); ``setting`` is the catalogue's
    ``crop.model``."""
    spec = parse_crop(value)
    if spec is None:
        return None
    spec = spec.removesuffix(MASK_SUFFIX)
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


def crop_loaded(loaded: LoadedImage, localiser: Localiser, *, mask: bool = False) -> tuple[LoadedImage, Box | None]:
    """``loaded`` cut to the box ``localiser`` finds in it (``mask``: with the background inside the box removed),
    and that box in pixels of the full upright image (``loaded.width`` x ``loaded.height``); unchanged and None when
    it finds no object."""
    image = loaded.image
    found = localiser.crop_box(image)
    if found is None:
        return loaded, None
    if mask and not callable(getattr(localiser, "mask_crop", None)):  # a registered localiser without masking
        raise InvalidParameterError(f"the localiser {type(localiser).__name__} cannot remove backgrounds: crop "
                                    "without ',mask'")
    cut = localiser.mask_crop(image, found) if mask else crop(image, found, loaded.source)
    sx, sy = loaded.width / image.width, loaded.height / image.height
    x, y = min(int(found.x * sx), loaded.width - 1), min(int(found.y * sy), loaded.height - 1)
    full = Box(x, y, max(1, min(round(found.w * sx), loaded.width - x)),
               max(1, min(round(found.h * sy), loaded.height - y)))
    return dataclasses.replace(loaded, image=cut), full
