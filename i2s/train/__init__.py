"""Training the kit's ``mini`` StyleGAN v1 (64x64 faces) on a CPU: ``python -m i2s.train``.

The recipe is StyleGAN v1's (Karras, Laine, Aila, "A Style-Based Generator Architecture for
Generative Adversarial Networks", CVPR 2019; NVlabs/stylegan ``training/``), scaled down:

* generator: :class:`i2s.stylegan.StyleGAN` with the mini config (channels 128 at 4-32 px,
  64 at 64 px; z, w 512-d; 8 mapping layers);
* discriminator: :class:`Discriminator`, the ``D_basic`` of networks_stylegan.py with
  equalized learning rate, minibatch standard deviation at 4x4 and the same channel counts
  (down-sampling by blur + stride-2 conv by default, a quarter of v1's conv-then-pool
  multiply-adds; ``--d-down pool`` for v1's);
* progressive growing (Karras et al. 2018, kept by StyleGAN v1): training starts at 8x8 and
  each new resolution is faded in linearly, in G (``Synthesis.forward(block, alpha)``), in D
  (:meth:`Discriminator.forward`) and in the reals; Adam's state is reset at every phase
  change (``reset_opt_for_new_lod``);
* loss: non-saturating logistic for G and D, R1 penalty on reals (``D_logistic_simplegp``),
  applied lazily every ``--r1-interval`` D steps with the penalty scaled by the interval
  (StyleGAN2's lazy regularisation);
* style-mixing regularisation (probability 0.9, crossover at a random active layer);
* the long-term average ``G_ema`` (the official ``Gs``, half-life 10k images, with
  StyleGAN2-ADA's ramp-up) which also carries ``w_avg`` (w̄) and the stored noise of G;
* Adam lr 0.002, betas (0, 0.99), eps 1e-8 for every parameter (the mapping network's
  lrmul 0.01 lives in its equalized-lr runtime scale, so one plain lr is the official rule);
* augmentation for a small data set: x-flips of the reals plus DiffAugment-style
  differentiable colour / translation / cutout (Zhao et al., NeurIPS 2020) on everything D
  sees (``--augment diffaug``).

The measured costs that shape this (``python -m i2s.train --bench``) say images at 8-32 px are
many times cheaper than at 64 px, so most images are shown at low resolution.

Typical use::

    python -m i2s.train --data faces64.npy --out train-runs/mini --threads 2
    python -m i2s.train --out train-runs/mini --resume          # continue exactly
    python -m i2s.train --out train-runs/mini --export data/models/mini-faces64.pt
    python -m i2s.train --out train-runs/mini --export-carry carry.pt   # G, G_ema, D; ~34 MB for v2
    python -m i2s.train --data faces64.npy --out new-run --transfer carry.pt ...  # another machine
    python -m i2s.train --out train-runs/mini --export-d gen-d.pt  # D alone (~3.8 MB for v3), beside --export gen.pt
    python -m i2s.train --data faces64.npy --out new-run --transfer gen.pt --transfer-d gen-d.pt ...
    python -m i2s.train --data faces64.npy --out new-run --transfer gen.pt --d-warmup-kimg 20 ...  # no D file: D alone first
    python -m i2s.train --out train-runs/mini --export avg.pt --average-from 1132  # mean of the kept snapshots from 1132k
    python -m i2s.train --bench                                   # images/s per resolution

One job per module: :mod:`~i2s.train.discriminator` (``D_basic``), :mod:`~i2s.train.augment`
(DiffAugment), :mod:`~i2s.train.schedule` (progressive growing), :mod:`~i2s.train.data` (the
image array and the batch order), :mod:`~i2s.train.trainer` (the step, the loop, checkpoints),
:mod:`~i2s.train.files` (the formats, the bounded reader, atomic saving),
:mod:`~i2s.train.export` (the ``i2s-stylegan1`` file), :mod:`~i2s.train.bench` and
:mod:`~i2s.train.cli` (the command line).
"""

from .augment import diff_augment
from .cli import build_parser, main, parse_args
from .data import BatchStream, open_dataset
from .discriminator import Discriminator
from .export import export_carry, export_from_checkpoint, export_generator
from .files import CARRY_FORMAT, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, EXPORT_FORMAT, EXPORT_FORMAT_VERSION
from .schedule import Phase, Schedule, parse_batch, parse_schedule
from .trainer import TrainState, Trainer, ema_update

__all__ = [
    "Discriminator", "diff_augment", "Schedule", "Phase", "parse_schedule", "parse_batch",
    "Trainer", "TrainState", "ema_update", "export_generator", "export_from_checkpoint", "export_carry", "build_parser",
    "parse_args", "main", "EXPORT_FORMAT", "EXPORT_FORMAT_VERSION", "CARRY_FORMAT", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION",
    "BatchStream", "open_dataset",
]
