"""Patch matching, the BinGAN paper's second benchmark: 64×64 grey patch pairs and the FPR at 95% recall.

- :mod:`.pairs`: :class:`PatchPairs` (distinct patches + index pairs + match flags), the shared helpers;
- :mod:`.brown`: the Brown / UBC Photo Tourism folders (bitmap sheets, ``info.txt``, ``m50_*.txt``) as published;
- :mod:`.stereo`: pairs from ``skimage.data.stereo_motorcycle()`` and its ground-truth disparity (offline);
- :mod:`.warps`: pairs from known warps of scikit-image's photographs, and unlabelled training patches;
- :mod:`.descriptors`: BRIEF, ORB, BRISK, LATCH, BinBoost, BEBLID, TEBLID, FREAK and SIFT from OpenCV;
- :mod:`.runner`: FPR@95 of descriptors (and ``bingan:MODEL``) on sets, ``lookalike eval patches``.

OpenCV (``opencv-contrib-python-headless``, the ``[patches]`` extra) and scikit-image are imported when used;
importing this package needs neither.
"""

from .brown import TEST_PAIRS, is_brown_folder, load_brown_pairs, load_brown_patches
from .descriptors import DESCRIPTORS, Descriptor, describe
from .pairs import PATCH, SMALL, PatchPairs, resize_patches
from .runner import Result, evaluate, format_table, load_set, run
from .stereo import motorcycle_pairs, stereo_pairs
from .warps import training_patches, warp_pairs

__all__ = ["DESCRIPTORS", "PATCH", "SMALL", "TEST_PAIRS", "Descriptor", "PatchPairs", "Result", "describe",
           "evaluate", "format_table", "is_brown_folder", "load_brown_pairs", "load_brown_patches", "load_set",
           "motorcycle_pairs", "resize_patches", "run", "stereo_pairs", "training_patches", "warp_pairs"]
