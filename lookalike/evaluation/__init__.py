"""Retrieval evaluation: pure functions from distances, rankings and labels to scores.

- Inputs: :func:`hamming_distances`, :func:`rank_by_distance` / :func:`rank_by_score` (stable: ties by
  ascending row), :func:`relevance`.
- mAP@k, standard (:func:`map_at_k`, :func:`average_precision_at_k`) and tie-aware (:func:`tie_aware_map_at_k`,
  :func:`tie_aware_average_precision_at_k`); say which a table reports. :func:`retrieval_map` runs a labelled
  benchmark (BinGAN's protocol included) from codes or vectors in bounded memory.
- :func:`precision_at_k`, :func:`recall_at_k`, :func:`precision_recall_by_radius` (and of codes at every Hamming
  radius, :func:`precision_recall_of_codes`), :func:`fpr_at_95`.
"""

from lookalike.evaluation._ranking import hamming_distances, rank_by_distance, rank_by_score, relevance
from lookalike.evaluation.metrics import (
    average_precision_at_k,
    fpr_at_95,
    map_at_k,
    precision_at_k,
    precision_recall_by_radius,
    precision_recall_of_codes,
    recall_at_k,
    retrieval_map,
    tie_aware_average_precision_at_k,
    tie_aware_map_at_k,
)

__all__ = [
    "average_precision_at_k",
    "fpr_at_95",
    "hamming_distances",
    "map_at_k",
    "precision_at_k",
    "precision_recall_by_radius",
    "precision_recall_of_codes",
    "rank_by_distance",
    "rank_by_score",
    "recall_at_k",
    "relevance",
    "retrieval_map",
    "tie_aware_average_precision_at_k",
    "tie_aware_map_at_k",
]
