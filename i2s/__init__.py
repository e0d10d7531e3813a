"""i2s: an open reproduction kit for Image2StyleGAN (Abdal, Qin, Wonka, ICCV 2019).

Public API::

    G = i2s.load_generator("auto")              # paper tier (FFHQ-1024) or the embedded mini model
    res = i2s.embed(G, images)                  # Algorithm 1 (W+, w̄ init, 5000 Adam steps, Eq. 1)
    i2s.morph(w1, w2, 0.5); i2s.crossover(wc, ws); i2s.expression_transfer(w1, w2, w3, 3.0)
"""

from .edits import crossover, default_crossover_layer, expression_direction, expression_transfer, morph
from .embed import EmbedResult, embed
from .loss import EmbeddingLoss, LossSettings
from .models import load_generator
from .stylegan import StyleGAN, StyleGANConfig, random_weights

__version__ = "0.1.0"

__all__ = [
    "EmbedResult", "EmbeddingLoss", "LossSettings", "StyleGAN", "StyleGANConfig", "crossover",
    "default_crossover_layer", "embed", "expression_direction", "expression_transfer", "load_generator",
    "morph", "random_weights", "__version__",
]
