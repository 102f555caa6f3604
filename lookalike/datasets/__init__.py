"""Benchmark datasets and image folders: load them, and export them as class-per-folder image trees.

Loaders return a :class:`Dataset` (images and labels in memory) or, for a folder of files, a
:class:`FolderDataset` (paths and labels). Errors they add to :mod:`lookalike.errors`::

    LookalikeError
    └── DatasetError                               a dataset file is corrupt or not in its format
        └── DatasetNotFoundError (also FileNotFoundError)   a folder or file is missing; says how to get it

Example:
    >>> from lookalike.datasets import export_dataset
    >>> paths = export_dataset("fashion-mnist", "fmnist-test", split="test", limit=1000)
"""

from __future__ import annotations

from lookalike.datasets._common import (
    Dataset,
    slugify,
)
from lookalike.datasets.cifar10 import CIFAR10_ENV, load_cifar10
from lookalike.datasets.export import (
    DATASET_NAMES,
    EXPORT_FORMATS,
    export_dataset,
    export_image_folder,
    stratified_subset,
)
from lookalike.datasets.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    FASHION_MNIST_ENV,
    load_fashion_mnist,
    read_idx,
    write_idx,
)
from lookalike.datasets.folder import FolderDataset, load_image_folder
from lookalike.errors import DatasetError, DatasetNotFoundError

__all__ = [
    "CIFAR10_ENV",
    "DATASET_NAMES",
    "EXPORT_FORMATS",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_ENV",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "FolderDataset",
    "export_dataset",
    "export_image_folder",
    "load_cifar10",
    "load_fashion_mnist",
    "load_image_folder",
    "read_idx",
    "slugify",
    "stratified_subset",
    "write_idx",
]
