"""Classic unsupervised hashing baselines with the scikit-learn estimator API: float vectors → packed binary codes.

Every hasher: ``fit(X)`` on (n_samples, n_features) floats, ``transform(X)`` → (n, n_bits // 8) uint8 codes
(``np.packbits`` of ``project(X) > 0``; bit j is column j, big-endian within each byte), ``project(X)`` the
real-valued outputs before thresholding, ``to_state()`` / ``Hasher.from_state()`` to store a fit without pickle.

- ``adapt`` :class:`AdaptedITQ`, ITQ on a learned neighbour-smoothing map: codes adapted to the catalogue
- ``adapt-spectral`` :class:`SpectralAdapt`, ITQ on an MLP's map into the catalogue's k-NN-graph spectral
  embedding (needs torch to fit)
- ``bingan-head`` :class:`BinGANHead`, BinGAN's DMR + BRE regularisers on a float embedding (needs torch to fit)
- ``itq``  :class:`ITQ`, iterative quantisation (Gong & Lazebnik 2011)
- ``kmh``  :class:`KMeansHashing`, k-means hashing (He, Wen & Sun 2013)
- ``lsh``  :class:`LSH`, random hyperplanes (Charikar 2002)
- ``pcah`` :class:`PCAH`, sign of the top principal components
- ``sh``   :class:`SpectralHashing`, spectral hashing (Weiss, Torralba & Fergus 2008)
- ``sph``  :class:`SphericalHashing`, spherical hashing (Heo et al. 2012), searched by plain Hamming distance

Example::

    from lookalike.hashing import Hasher, get_hasher
    hasher = get_hasher("itq", n_bits=64, random_state=0).fit(train)
    codes = hasher.transform(vectors)                     # (n, 8) uint8
    same = Hasher.from_state(hasher.to_state())           # arrays and scalars only
"""

from __future__ import annotations

from .adapt import AdaptedITQ
from .adapt_spectral import SpectralAdapt
from .base import Hasher, NotFittedError, available_hashers, get_hasher, hasher_spec, parse_hasher
from .bingan_head import BinGANHead
from .kmeans import KMeansHashing
from .lsh import LSH
from .pca import ITQ, PCAH
from .spectral import SpectralHashing
from .spherical import SphericalHashing

__all__ = [
    "AdaptedITQ",
    "BinGANHead",
    "Hasher",
    "ITQ",
    "KMeansHashing",
    "LSH",
    "NotFittedError",
    "PCAH",
    "SpectralAdapt",
    "SpectralHashing",
    "SphericalHashing",
    "available_hashers",
    "get_hasher",
    "hasher_spec",
    "parse_hasher",
]
