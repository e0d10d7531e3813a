"""i2s: an open reproduction kit for Image2StyleGAN (Abdal, Qin, Wonka, ICCV 2019).

Public API::

    G = i2s.load_generator("auto")              # paper tier (FFHQ-1024) or the embedded mini model
    x = i2s.load_target("photo.jpg", G, align=True)   # [1, 3, R, R], framed for G
    res = i2s.embed(G, x)                       # Algorithm 1 (W+, w̄ init, 5000 Adam steps, Eq. 1)
    res = i2s.embed(G, x, i2s.EmbedSettings(steps=1000))   # every hyper-parameter in one object
    i2s.morph(w1, w2, 0.5); i2s.crossover(wc, ws); i2s.expression_transfer(w1, w2, w3, 3.0)
"""

from .edits import crossover, default_crossover_layer, expression_direction, expression_transfer, morph
from .cache import cached_embed
from .data import load_target
from .embed import EmbedResult, EmbedSettings, embed
from .loss import EmbeddingLoss, LossSettings
from .models import load_generator
from .stylegan import StyleGAN, StyleGANConfig, random_weights

__version__ = "0.1.0"

__all__ = [
    "EmbedResult", "EmbedSettings", "EmbeddingLoss", "LossSettings", "StyleGAN", "StyleGANConfig", "cached_embed",
    "crossover", "load_target",
    "default_crossover_layer", "embed", "expression_direction", "expression_transfer", "load_generator",
    "morph", "random_weights", "__version__",
]
