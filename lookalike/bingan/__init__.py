"""BinGAN (Zieba, Semberecki, El-Gaaly & Trzcinski, "BinGAN: Learning Compact Binary Descriptors with a Regularized
GAN", NeurIPS 2018): compact binary codes from the discriminator of a GAN regularised by DMR and BRE.

- :mod:`.config`: :class:`BinGANConfig`, every hyperparameter (reference-code defaults) and preprocessing;
- :mod:`.nets`: the weight-normalised discriminators (retrieval, patch) and the generator (torch);
- :mod:`lookalike.hashing.bingan_losses`: softsign, DMR, BRE (L_ME + L_MAC), the improved-GAN loss, feature
  matching (shared with the BinGAN head hasher, so they live with the hashers);
- :mod:`.trainer`: training with checkpoints, ``resume`` and periodic mAP; ``lookalike train bingan`` runs it;
- :mod:`.modelfile`: the model file (an ``.npz`` with the ONNX code graph) that ``--encoder bingan:PATH`` reads;
- :mod:`.encoder`: that encoder, registered as ``bingan`` when this package is imported (``import lookalike`` does).

Only :mod:`.config`, :mod:`.data`, :mod:`.encoder` and :mod:`.modelfile` reading are torch-free; importing this
package loads neither torch nor onnxruntime.
"""

from ..encoders import register_encoder
from .config import BinGANConfig
from .encoder import BinGANEncoder

register_encoder("bingan", BinGANEncoder)

__all__ = ["BinGANConfig", "BinGANEncoder"]
