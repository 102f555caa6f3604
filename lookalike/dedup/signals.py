"""The evidence that two images are copies of each other, beyond the embedding's cosine.

Every catalogue item keeps two 32x32 grey thumbnails (2 KiB): of the whole image, and of the image with uniform
borders trimmed (:func:`trim_box`: a padded copy, a letterboxed or plain-background product photo all trim to their
content, whatever the aspect ratio the padding gave them). From them:

- ``geometric``: one thumbnail is scaled down to 100%, 90%, ... 60% of the other and slid over it; the best
  zero-mean normalised cross-correlation (NCC) over every position, scale, both mirror images and both directions,
  for the whole and for the trimmed thumbnails, is the score. A crop of up to 40% of each side lies inside the
  original at one of those scales; NCC ignores brightness and contrast; mirror images are tried. The whole
  thumbnails are also compared turned: the central 22x22 of one, rotated by 0, 3, 6 and 10 degrees either way (and
  mirrored), slid over the other, the best NCC less 0.03 (so many small templates also fit unrelated images
  better by chance; the penalty was chosen on benchmarks/duplicates.py among 0, 0.01, 0.02 and 0.03 as the one
  that loses no edit type);
- ``phash`` / ``phash_trim``: the 64-bit DCT perceptual hash (as ``imagehash.phash``) of each thumbnail, as
  ``1 - hamming / 64``. Nearly free, strong on re-encoded, resized and brightened copies. ``phash_mirrored`` /
  ``phash_trim_mirrored``, the same with one side mirrored: a pair's evidence is the better of the pair as it is
  and as a mirror image, less log10(2) for the second try (:func:`.calibration.evidence_against`); taking the
  better hash score instead raised every distractor's score and cost a tenth of the recall everywhere else.

And a veto, not evidence: ``colour``, how far apart the hues of the two images' content are (:func:`colour_signature`,
:func:`colour_distance`). Grey thumbnails cannot tell a navy from a beige version of one design, which the cosine
and the hashes then call copies; the calibration caps a near-duplicate at the largest colour distance its own
edited copies reach (:mod:`.calibration`), so variants in another colour stay ``similar``.

Different products with the same silhouette also correlate well, which is why the verdict combines these scores
with the cosine (see :mod:`.calibration`). Measured on benchmarks/duplicates.py (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

__all__ = ["THUMB", "colour_bytes", "colour_distance", "colour_from_bytes", "colour_signature", "from_bytes",
           "geometric_score", "geometric_scores", "pair_signals", "phash_bits", "thumbnail", "thumbnail_bytes",
           "trim_box"]

THUMB = 32
_SIZES = (32, 30, 28, 26, 24, 22, 20)  # 100% .. ~60% of a side
_ANGLES = (0.0, -3.0, 3.0, -6.0, 6.0, -10.0, 10.0)  # degrees tried by the rotation search
_ROT_SIDE = 22  # the centre of a rotated thumbnail compared (inside the picture up to ~25 degrees)
_ROT_PENALTY = 0.03  # subtracted from the rotation search's best NCC: its many small templates fit by chance more
_CACHE = 128  # prepared thumbnails kept by geometric_scores (~1.2 MB each; pairs come sorted by their first key)
_TRIM_SIDE = 128  # borders are found on a copy this large
_TRIM_TOL = 10  # grey levels from the border colour that still count as border
_TRIM_MIN_AREA = 0.1  # a trim leaving less than this share of the image is not trusted (a blank image, noise)
_HUES = 12  # hue bins of the colour signature
_CHROMA_HALF = 2.0  # mean chroma (YCbCr units) at which the hue distance counts half: greyish images weigh less


def trim_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of ``image`` without its uniform borders (up to three nested ones, e.g. a pad
    around a plain background), or None when there is nothing to trim."""
    grey = image.convert("L")
    w, h = grey.size
    s = min(1.0, _TRIM_SIDE / max(w, h))
    a = np.asarray(grey.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BOX), np.float32)
    t, b, left, r = 0, a.shape[0], 0, a.shape[1]
    for _ in range(3):
        sub = a[t:b, left:r]
        if min(sub.shape) < 8:
            break
        colour = np.median(np.r_[sub[0], sub[-1], sub[:, 0], sub[:, -1]])
        off = np.abs(sub - colour) > _TRIM_TOL
        rows, cols = np.flatnonzero(off.mean(axis=1) > 0.02), np.flatnonzero(off.mean(axis=0) > 0.02)
        if not len(rows) or not len(cols):
            break
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        if (r0, c0, r1, c1) == (0, 0, sub.shape[0], sub.shape[1]):
            break
        t, b, left, r = t + r0, t + r1, left + c0, left + c1
    if (t, b, left, r) == (0, a.shape[0], 0, a.shape[1]) or (b - t) * (r - left) < _TRIM_MIN_AREA * a.size:
        return None
    return round(left / s), round(t / s), max(round(left / s) + 1, min(w, round(r / s))), \
        max(round(t / s) + 1, min(h, round(b / s)))


def _grey_thumb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.uint8)


def thumbnail(image: Image.Image) -> np.ndarray:
    """(2, 32, 32) uint8: grey thumbnails of the whole image and of its trimmed content (aspect ratio not kept)."""
    box = trim_box(image)
    whole = _grey_thumb(image)
    return np.stack([whole, whole if box is None else _grey_thumb(image.crop(box))])


def thumbnail_bytes(image: Image.Image) -> bytes:
    return thumbnail(image).tobytes()


def colour_signature(image: Image.Image) -> np.ndarray:
    """(13,) float32: the chroma-weighted hue histogram of the image's trimmed content (12 bins, soft-assigned,
    summing to 1) and its mean chroma. Brightness and contrast edits scale the chroma, not the hue, so the histogram
    stays; JPEG, resizing, crops, mirror images and small rotations barely move it."""
    box = trim_box(image)
    small = (image.crop(box) if box is not None else image).convert("RGB").resize((THUMB, THUMB),
                                                                                 Image.Resampling.BOX)
    ycc = np.asarray(small.convert("YCbCr"), dtype=np.float32)
    cb, cr = ycc[..., 1] - 128.0, ycc[..., 2] - 128.0
    chroma = np.hypot(cb, cr).ravel()
    hue = ((np.arctan2(cr, cb) / (2 * np.pi)) * _HUES % _HUES).ravel()
    low = np.floor(hue).astype(np.int64) % _HUES
    frac = hue - np.floor(hue)
    hist = np.bincount(low, chroma * (1 - frac), _HUES) + np.bincount((low + 1) % _HUES, chroma * frac, _HUES)
    total = hist.sum()
    return np.r_[hist / total if total > 0 else hist, chroma.mean()].astype(np.float32)


def colour_bytes(image: Image.Image) -> bytes:
    return colour_signature(image).astype(np.float32).tobytes()


def colour_from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).reshape(_HUES + 1)


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """0 (the same hues) .. 1: the total variation between the hue histograms, weighted down where either image
    is nearly grey (its hues are then noise)."""
    least = float(min(a[_HUES], b[_HUES]))
    return float(0.5 * np.abs(a[:_HUES] - b[:_HUES]).sum() * least / (least + _CHROMA_HALF))


def from_bytes(blob: bytes) -> np.ndarray:
    """The (2, 32, 32) thumbnails stored as :func:`thumbnail_bytes` (a single old thumbnail is used twice)."""
    thumbs = np.frombuffer(blob, dtype=np.uint8).reshape(-1, THUMB, THUMB)
    return thumbs if len(thumbs) == 2 else np.stack([thumbs[0], thumbs[0]])


def _dct_matrix(n: int) -> np.ndarray:
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(THUMB)


def phash_bits(thumbs: np.ndarray) -> np.ndarray:
    """64-bit DCT hashes of (..., 32, 32) thumbnails: the 8x8 lowest frequencies above their median, (..., 64)."""
    x = np.asarray(thumbs, dtype=np.float64)
    low = (_DCT[:8] @ x @ _DCT[:8].T).reshape(*x.shape[:-2], 64)
    return low > np.median(low, axis=-1, keepdims=True)


def _pyramid(thumb: np.ndarray) -> list[np.ndarray]:
    image = Image.fromarray(np.ascontiguousarray(thumb, dtype=np.uint8))
    return [np.asarray(image.resize((n, n), Image.Resampling.BILINEAR), dtype=np.float32) for n in _SIZES]


def _windows(big: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    w = sliding_window_view(big, (n, n)).reshape(-1, n * n)
    w = w - w.mean(axis=1, keepdims=True)
    return w, np.einsum("ij,ij->i", w, w)


def _centred(templates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, n, n) templates as (m, n*n) less their means, with their energies: ready for :func:`_ncc`."""
    t = templates.reshape(len(templates), -1)
    t = t - t.mean(axis=1, keepdims=True)
    return t, np.einsum("ij,ij->i", t, t)


def _ncc(big_windows: tuple[np.ndarray, np.ndarray], templates: tuple[np.ndarray, np.ndarray]) -> float:
    """Best NCC of any of the :func:`_centred` ``templates`` over every window."""
    windows, energy = big_windows
    t, t_energy = templates
    n2 = t.shape[1]
    # the small constant keeps flat patches (a white background) from correlating perfectly by rounding
    norms = np.sqrt(energy[:, None] * t_energy[None, :]) + 1e-3 * n2 * n2
    return float(((windows @ t.T) / norms).max())


class _Prepared:
    """A thumbnail with its scaled copies (and their mirror images) and its sliding windows, ready to compare
    many times. A mirrored template against the windows is the template against the mirrored image's windows,
    so only the image as it is needs windows."""

    def __init__(self, thumb: np.ndarray, rotations: bool = False) -> None:
        base = np.asarray(thumb, dtype=np.uint8).reshape(THUMB, THUMB)
        full = base.astype(np.float32)
        self.templates = [_centred(np.stack([p, p[:, ::-1]])) for p in _pyramid(base)]
        self.windows = {n: _windows(full, n) for n in _SIZES}
        self.rotated = _centred(_rotated(base)) if rotations else None


def _rotated(thumb: np.ndarray) -> np.ndarray:
    """The centre (22 x 22) of the thumbnail turned by each of :data:`_ANGLES`, as it is and mirrored."""
    image = Image.fromarray(np.ascontiguousarray(thumb))
    lo = (THUMB - _ROT_SIDE) // 2
    out = []
    for angle in _ANGLES:
        turned = image.rotate(angle, resample=Image.Resampling.BILINEAR) if angle else image
        centre = np.asarray(turned, dtype=np.float32)[lo : lo + _ROT_SIDE, lo : lo + _ROT_SIDE]
        out += [centre, centre[:, ::-1]]
    return np.stack(out)


def _score(a: _Prepared, b: _Prepared) -> float:
    best = -1.0
    for i, n in enumerate(_SIZES):  # b inside a and a inside b, each as it is and mirrored
        best = max(best, _ncc(a.windows[n], b.templates[i]), _ncc(b.windows[n], a.templates[i]))
    if a.rotated is not None and b.rotated is not None and best < 1.0 - _ROT_PENALTY:
        # the centre of one, turned, anywhere in the other (it cannot beat a score this high: skipped)
        turned = max(_ncc(a.windows[_ROT_SIDE], b.rotated), _ncc(b.windows[_ROT_SIDE], a.rotated))
        best = max(best, turned - _ROT_PENALTY)
    return best


def _as_pair(thumb: np.ndarray) -> np.ndarray:
    t = np.asarray(thumb, dtype=np.uint8)
    return t.reshape(-1, THUMB, THUMB) if t.ndim == 3 else np.stack([t.reshape(THUMB, THUMB)] * 2)


def geometric_score(a: np.ndarray, b: np.ndarray) -> float:
    """Best NCC of one thumbnail inside the other (either way, any scale from 100% to 60%, mirrored or not; whole
    and trimmed thumbnails when given (2, 32, 32)); for the whole thumbnails also the rotation search (the centre
    of one turned by up to 10 degrees, anywhere in the other, less :data:`_ROT_PENALTY`)."""
    pa, pb = _as_pair(a), _as_pair(b)
    whole = _score(_Prepared(pa[0], rotations=True), _Prepared(pb[0], rotations=True))
    if np.array_equal(pa[1], pa[0]) and np.array_equal(pb[1], pb[0]):
        return whole
    return max(whole, _score(_Prepared(pa[1]), _Prepared(pb[1])))


def geometric_scores(thumbs: Mapping[int, np.ndarray], pairs: np.ndarray, only: np.ndarray | None = None) -> np.ndarray:
    """:func:`geometric_score` for each (a, b) row of ``pairs`` (keys into ``thumbs``); NaN where one is missing or
    where ``only`` (a mask over the pairs) is false.

    Each thumbnail is prepared once however many pairs it is in.
    """
    cache: dict[tuple[int, int], _Prepared] = {}

    def prepared(key: int, which: int) -> _Prepared | None:
        if (key, which) not in cache:
            if len(cache) >= _CACHE:  # ~1.2 MB each: bound the memory of a catalogue-wide run
                cache.clear()
            thumb = thumbs.get(key)
            if thumb is None:
                return None
            cache[key, which] = _Prepared(_as_pair(thumb)[which], rotations=which == 0)
        return cache[key, which]

    out = np.full(len(pairs), np.nan, dtype=np.float32)
    todo = np.ones(len(pairs), dtype=bool) if only is None else np.asarray(only, dtype=bool)
    for i in np.flatnonzero(todo).tolist():
        a, b = int(pairs[i][0]), int(pairs[i][1])
        if a not in thumbs or b not in thumbs:
            continue
        ta, tb = _as_pair(thumbs[a]), _as_pair(thumbs[b])
        best = _score(prepared(a, 0), prepared(b, 0))  # type: ignore[arg-type]
        if not (np.array_equal(ta[1], ta[0]) and np.array_equal(tb[1], tb[0])):
            best = max(best, _score(prepared(a, 1), prepared(b, 1)))  # type: ignore[arg-type]
        out[i] = best
    return out


def pair_signals(thumbs: Mapping[int, np.ndarray], pairs: np.ndarray, only: np.ndarray | None = None,
                 colours: Mapping[int, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The thumbnail signals of each (a, b) row of ``pairs`` (keys into ``thumbs``), by name; NaN where a thumbnail
    is missing. ``geometric`` (the slow one, ~1.5 ms a pair) only where ``only`` is true, if given; ``colour`` (the
    veto) when ``colours`` (key → :func:`colour_signature`) are given. The cosine comes from the index."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    keys = sorted(set(pairs.reshape(-1).tolist()) & set(thumbs))
    row = {k: i for i, k in enumerate(keys)}
    bits = np.zeros((len(keys), 2, 64), dtype=bool)
    mirror = np.zeros((len(keys), 2, 64), dtype=bool)  # the hashes of the mirrored thumbnails
    for start in range(0, len(keys), 4096):  # bounded float64 work space however many thumbnails
        block = np.stack([_as_pair(thumbs[k]) for k in keys[start : start + 4096]])
        bits[start : start + 4096] = phash_bits(block)
        mirror[start : start + 4096] = phash_bits(block[..., ::-1])
    have = np.array([a in row and b in row for a, b in pairs.tolist()], dtype=bool)
    ia = np.array([row.get(a, 0) for a in pairs[:, 0].tolist()], dtype=np.int64)
    ib = np.array([row.get(b, 0) for b in pairs[:, 1].tolist()], dtype=np.int64)
    out = {}
    for which, name in ((0, "phash"), (1, "phash_trim")):
        if len(pairs) and len(keys):
            same = 1.0 - np.count_nonzero(bits[ia, which] != bits[ib, which], axis=1) / 64.0
            mirrored = 1.0 - np.count_nonzero(bits[ia, which] != mirror[ib, which], axis=1) / 64.0
        else:
            same = mirrored = np.zeros(len(pairs))
        out[name] = np.where(have, same, np.nan)
        out[f"{name}_mirrored"] = np.where(have, mirrored, np.nan)
    out["geometric"] = geometric_scores(thumbs, pairs, only).astype(np.float64)
    if colours is not None:
        out["colour"] = np.array([colour_distance(colours[a], colours[b]) if a in colours and b in colours
                                  else np.nan for a, b in pairs.tolist()], dtype=np.float64)
    return out
