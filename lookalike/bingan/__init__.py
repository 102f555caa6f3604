"""BinGAN (Zieba, Semberecki, El-Gaaly & Trzcinski, "BinGAN: Learning Compact Binary Descriptors with a Regularized
GAN", NeurIPS 2018): compact binary codes from the discriminator of a GAN regularised by DMR and BRE.

- :mod:`.config`: :class:`BinGANConfig`, every hyperparameter (reference-code defaults) and preprocessing;
- :mod:`.nets`: the weight-normalised discriminators (retrieval, patch) and the generator (torch);
- :mod:`.losses`: softsign, DMR, BRE (L_ME + L_MAC), the unsupervised improved-GAN loss, feature matching;
- :mod:`.trainer`: training with checkpoints, ``resume`` and periodic mAP; ``lookalike train bingan`` runs it;
- :mod:`.modelfile`: the model file (an ``.npz`` with the ONNX code graph) that ``--encoder bingan:PATH`` reads.

Only :mod:`.config`, :mod:`.data` and :mod:`.modelfile` reading are torch-free; importing this package loads
neither torch nor onnxruntime.
"""

from .config import BinGANConfig

__all__ = ["BinGANConfig"]
