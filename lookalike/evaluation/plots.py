"""PNG pictures of retrieval results (matplotlib, the ``[plots]`` extra, imported on first use, Agg backend).

Every function takes results already computed and writes one PNG, returning its path:

- :func:`plot_map_vs_bits`: mAP@1000 against the code length, one line per method, one panel per feature, the
  float cosine ranking of the same features as a horizontal line;
- :func:`plot_pr_by_radius`: precision and recall by Hamming radius (0..bits) and the precision–recall curve of
  that sweep, one row of panels per feature (from :func:`~lookalike.evaluation.precision_recall_of_codes`);
- :func:`plot_quality_vs_time`: quality against training time, each series a list of ``(seconds, mAP)`` points
  (a training run's evaluations, or one point per fitted method); :func:`history_points` reads them from the
  ``history`` of a BinGAN model file's metadata (``train bingan --eval-every N``).

:func:`plot_protocol` draws the first two from a :class:`~lookalike.evaluation.protocol.ProtocolRun`, as
``lookalike eval --plot DIR`` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidParameterError, LookalikeError

if TYPE_CHECKING:
    from .protocol import ProtocolRun

__all__ = ["history_points", "plot_map_vs_bits", "plot_pr_by_radius", "plot_protocol", "plot_quality_vs_time",
           "pyplot"]

MAP_VS_BITS = "map-vs-bits.png"
PR_BY_RADIUS = "pr-hamming.png"
Points = Sequence[tuple[float, float]]


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend, or an error naming the extra."""
    try:
        import matplotlib
    except ImportError as err:
        raise LookalikeError("plots need matplotlib: pip install 'lookalike[plots]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    if out.parent.exists() and not out.parent.is_dir():
        raise InvalidParameterError(f"Cannot write {out}: {out.parent} is a file, not a folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=110)
    finally:
        pyplot().close(fig)
    return out


ACRONYMS = ("lsh", "pcah", "itq", "sh", "sph", "kmh")  # the classic hashers, labelled in capitals
KNOWN = ("lsh", "pcah", "itq", "sh", "sph", "kmh", "bingan-head", "adapt")  # each keeps its colour from plot to plot


def _label(method: str) -> str:
    return method.upper() if method in ACRONYMS else method


def _colours(plt: Any, methods: Sequence[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    others = [m for m in methods if m not in KNOWN]
    return {m: cycle[(KNOWN.index(m) if m in KNOWN else len(KNOWN) + others.index(m)) % len(cycle)] for m in methods}


def plot_map_vs_bits(cells: Mapping[tuple[str, str, int], float], path: str | os.PathLike[str], *,
                     ceilings: Mapping[str, float] | None = None, title: str = "") -> Path:
    """mAP@1000 against bits: ``cells[(feature, method, bits)]`` the mAP, ``ceilings[feature]`` float cosine's."""
    if not cells:
        raise InvalidParameterError("Nothing to plot: no (feature, method, bits) cell given.")
    plt = pyplot()
    feats = list(dict.fromkeys(f for f, _, _ in cells))
    methods = list(dict.fromkeys(m for _, m, _ in cells))
    bits = sorted({b for _, _, b in cells})
    colours = _colours(plt, methods)
    fig, axes = plt.subplots(1, len(feats), figsize=(5.2 * len(feats), 4.2), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, feat in zip(axes[0], feats, strict=True):
        for method in methods:
            xs = [b for b in bits if (feat, method, b) in cells]
            if xs:
                ax.plot(xs, [cells[(feat, method, b)] for b in xs], marker="o", color=colours[method],
                        label=_label(method))
        if ceilings and feat in ceilings:
            ax.axhline(ceilings[feat], color="black", linestyle="--", linewidth=1, label="float cosine")
        ax.set_xscale("log", base=2)
        ax.set_xticks(bits, [str(b) for b in bits])
        ax.minorticks_off()
        ax.set_title(f"{feat} features")
        ax.set_xlabel("bits")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mAP@1000")
    shown: dict[str, Any] = {}  # every method once, also those only one feature set has
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            shown.setdefault(label, handle)
    axes[0][-1].legend(list(shown.values()), list(shown), fontsize="small", loc="lower right")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_pr_by_radius(curves: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]],
                      path: str | os.PathLike[str], *, bits: int, title: str = "") -> Path:
    """Per feature: precision and recall against the Hamming radius, and precision against recall.

    ``curves[(feature, method)]`` is ``(precision, recall)`` at radii 0..bits (NaN precision where no query
    retrieves anything is left out).
    """
    if not curves:
        raise InvalidParameterError("Nothing to plot: no (feature, method) curve given.")
    plt = pyplot()
    from matplotlib import ticker

    feats = list(dict.fromkeys(f for f, _ in curves))
    fig, axes = plt.subplots(len(feats), 3, figsize=(14, 4.2 * len(feats)), squeeze=False, layout="constrained")
    colours = _colours(plt, list(dict.fromkeys(m for _, m in curves)))
    for row, feat in zip(axes, feats, strict=True):
        for method in [m for f, m in curves if f == feat]:
            precision, recall = (np.asarray(a, dtype=float) for a in curves[(feat, method)])
            radii = np.arange(precision.size)
            colour, label = colours[method], _label(method)
            row[0].plot(radii, precision, color=colour, label=label)
            row[1].plot(radii, recall, color=colour, label=label)
            row[2].plot(recall, precision, color=colour, marker=".", markersize=3, label=label)
        for ax, (x, y) in zip(row, (("Hamming radius", "precision"), ("Hamming radius", "recall"),
                                    ("recall", "precision")), strict=True):
            ax.set_xlabel(x)
            ax.set_ylabel(y)
            ax.grid(alpha=0.3)
        for ax in row[:2]:
            ax.set_xlim(0, bits)
            ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        row[0].set_title(f"{feat}, {bits} bits: precision within radius r")
        row[1].set_title("recall within radius r")
        row[2].set_title("precision–recall (radius 0..bits)")
        row[2].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_quality_vs_time(series: Mapping[str, Points], path: str | os.PathLike[str], *,
                         ylabel: str = "mAP@1000", title: str = "") -> Path:
    """Quality against training seconds (log scale): a line per series of several points, in the order given (a
    training history's), a marker for a series of one."""
    if not series or not any(len(points) for points in series.values()):
        raise InvalidParameterError("Nothing to plot: no (seconds, quality) point given.")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.4), layout="constrained")
    for label, points in series.items():
        if not len(points):
            continue
        xs, ys = zip(*points, strict=True)
        if min(xs) <= 0:
            raise InvalidParameterError(f"Training seconds must be > 0 (log axis). Got {min(xs)} in {label!r}.")
        ax.plot(xs, ys, marker="o", linestyle="-" if len(xs) > 1 else "none", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training (fit) seconds")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def history_points(history: Sequence[Mapping[str, float]], key: str = "map@1000") -> list[tuple[float, float]]:
    """``(cumulative training seconds, quality)`` at each epoch of a BinGAN training history that measured ``key``.

    ``history`` is a model file's ``meta["history"]`` (:func:`lookalike.bingan.modelfile.read_model`): one
    record per epoch with its ``seconds`` and, every ``--eval-every`` epochs, ``map@K``.
    """
    points, spent = [], 0.0
    for record in history:
        spent += float(record.get("seconds", 0.0))
        if key in record:
            points.append((spent, float(record[key])))
    return points


def plot_protocol(run: ProtocolRun, folder: str | os.PathLike[str], *, title: str = "") -> list[Path]:
    """:func:`plot_map_vs_bits` and :func:`plot_pr_by_radius` of a protocol run, as ``map-vs-bits.png`` and
    ``pr-hamming.png`` in ``folder`` (created when missing)."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"The plot folder {str(out)!r} is a file, not a folder.")
    cells = {key: cell[0] for key, cell in run.cells.items()}
    ceilings = {feat: cell[0] for feat, cell in run.ceilings.items()}
    return [plot_map_vs_bits(cells, out / MAP_VS_BITS, ceilings=ceilings, title=title),
            plot_pr_by_radius(run.pr, out / PR_BY_RADIUS, bits=run.pr_bits, title=title)]
