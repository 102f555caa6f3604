"""Triplet training: a similarity embedding learned from (query, positive, negative) triplets.

The fashion prototype's recipe (after Flipkart's VisNet: a 512-d embedding, the hinge loss
``max(0, g + D(q, p) - D(q, n))``, hard negatives) and TiefVision's (a margin on the cosine), on efficientnet-lite0:

- :mod:`.config`: :class:`TripletConfig`, every hyperparameter (torch-free, stored as JSON in model files);
- :mod:`.data`: triplets from class folders, a CSV of triplets or a CSV of similar pairs; the validation split;
  the training batches (torch-free);
- :mod:`.losses`: the hinge loss with semi-hard, hard or all-negatives mining inside a batch;
- :mod:`.nets`: the projection head, and efficientnet-lite0 split for fine-tuning its last blocks;
- :mod:`.trainer`: training with checkpoints, ``resume`` and validation triplet accuracy; ``lookalike train
  triplet`` runs it, and ``train_features`` trains on rows of features and their class labels (no image files);
- :mod:`.suspects`: suspected label errors, the items whose neighbours in the trained embedding carry another
  class (logged after training on classes; ``train triplet --suspects FILE`` writes them as CSV);
- :mod:`.modelfile`: the model file (an ``.npz`` with the ONNX graph) that ``--encoder triplet:PATH`` reads;
- :mod:`.encoder`: that encoder, registered as ``triplet`` when this package is imported (``import lookalike``
  does).

Only :mod:`.config`, :mod:`.data`, :mod:`.encoder`, :mod:`.modelfile` reading and writing the suspects CSV are
torch-free; importing this
package loads neither torch nor onnxruntime.
"""

from ..encoders import register_encoder
from .config import TripletConfig
from .encoder import TripletEncoder

register_encoder("triplet", TripletEncoder)

__all__ = ["TripletConfig", "TripletEncoder"]
