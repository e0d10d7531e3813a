"""A naive, readable reference implementation of Algorithm 1, for comparison only.

Image2StyleGAN's Algorithm 1 written the straightforward way, as a first port of the paper
would be: one image at a time, float32, and the target's VGG-16 features recomputed at every
step. The generator's forward pass is written out here too, following NVlabs/stylegan's
``networks_stylegan.py`` literally (nearest up-sampling by tiling then a 3x3 convolution, a
depthwise [1, 2, 1] blur as a grouped convolution, instance norm and style modulation as
separate element-wise operations), using the weights of an :class:`i2s.stylegan.StyleGAN`.

Nothing in the package imports this file. ``benchmarks/embed_speed.py`` times it against
:func:`i2s.embed.embed`, and ``tests/test_speed_equivalence.py`` checks that the optimised code
computes the same loss and gradient as this one.

Only the paper's default loss (Eq. 1: VGG-16 conv1_1, conv1_2, conv3_2, conv4_2 plus MSE, all
weights 1, pixels in [0, 255], perceptual branch at most 256 x 256) is implemented.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------- generator


def _conv(layer, x):
    """Conv2d of i2s.stylegan, literally: equalized lr, 'nearest' = tile then conv, 'fused' = official."""
    w = layer.weight * layer.weight_gain
    if layer.up == "fused":
        w = F.pad(w, (1, 1, 1, 1))
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
        return F.conv_transpose2d(x, w.permute(1, 0, 2, 3), stride=2, padding=1)
    if layer.up == "nearest":
        x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    return F.conv2d(x, w, padding=layer.kernel // 2)


def _blur(x):
    k = torch.tensor([1.0, 2.0, 1.0])
    k = torch.outer(k, k)
    k = (k / k.sum()).to(x).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(x, k, padding=1, groups=x.shape[1])


def _epilogue(ep, x, w):
    """noise -> bias -> leaky ReLU -> instance norm -> style modulation (constant noise)."""
    x = x + ep.noise_const * ep.noise_strength.view(1, -1, 1, 1)
    x = x + ep.bias.view(1, -1, 1, 1)
    x = F.leaky_relu(x, 0.2)
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + 1e-8)
    style = F.linear(w, ep.style.weight * ep.style.weight_gain, ep.style.bias * ep.style.bias_gain)
    style = style.view(-1, 2, x.shape[1], 1, 1)
    return x * (style[:, 0] + 1) + style[:, 1]


def synthesis(G, w_plus):
    """G.synthesis(w_plus) with constant noise, written out layer by layer."""
    layers = G.synthesis.layers
    x = layers[0].const.expand(w_plus.shape[0], -1, -1, -1)
    x = _epilogue(layers[0].epilogue, x, w_plus[:, 0])
    for k in range(1, len(layers)):
        x = _conv(layers[k].conv, x)
        if layers[k].blur:
            x = _blur(x)
        x = _epilogue(layers[k].epilogue, x, w_plus[:, k])
    torgb = G.synthesis.torgb[-1]
    return _conv(torgb.conv, x) + torgb.bias.view(1, -1, 1, 1)


# ----------------------------------------------------------------------------- loss (Eq. 1)


def vgg_slices(loss_fn):
    """The four VGG-16 slices (conv1_1, conv1_2, conv3_2, conv4_2) of an EmbeddingLoss."""
    assert len(loss_fn.slices) == 4 and loss_fn.settings.variant == "full", "the reference implements Eq. 1 only"
    return list(loss_fn.slices)


def perceptual_features(slices, img, resize=256):
    x = (img + 1) / 2  # [-1, 1] -> [0, 1]
    if x.shape[-1] > resize:
        x = F.avg_pool2d(x, x.shape[-1] // resize)
    feats = []
    for s in slices:
        x = s(x)
        feats.append(x)
    return feats


def loss(slices, generated, target):
    """Eq. 1 in paper units, per image; the target's features are computed again on every call."""
    total = generated.new_zeros(generated.shape[0])
    for f, tf in zip(perceptual_features(slices, generated), perceptual_features(slices, target)):
        total = total + 255.0**2 * (f - tf.detach()).square().flatten(1).mean(1)
    mse = ((generated - target) * 127.5).square().flatten(1).mean(1)
    return total + mse


# ----------------------------------------------------------------------------- Algorithm 1


def embed_one(G, slices, image, steps, lr=0.01, on_step=None):
    """Algorithm 1 for one image [1, 3, R, R]: w = w̄ in W+, Adam(lr, 0.9, 0.999, 1e-8).

    Returns (w_plus [1, L, 512], loss_curve [steps] (the loss before each update), final loss).
    """
    w = G.w_avg.detach().clone().view(1, 1, -1).repeat(1, G.num_layers, 1).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    curve = []
    for step in range(steps):
        opt.zero_grad()
        value = loss(slices, synthesis(G, w), image)
        value.sum().backward()
        opt.step()
        curve.append(value.item())
        if on_step is not None:
            on_step(step)
    with torch.no_grad():
        final = loss(slices, synthesis(G, w), image).item()
    return w.detach(), torch.tensor(curve, dtype=torch.float64), final


def embed_naive(G, loss_fn, images, steps, lr=0.01):
    """Algorithm 1 for each image of [N, 3, R, R], one after the other. Returns (w_plus, curves [steps, N], final [N])."""
    slices = vgg_slices(loss_fn)
    ws, curves, finals = [], [], []
    for i in range(images.shape[0]):
        w, c, f = embed_one(G, slices, images[i:i + 1], steps, lr)
        ws.append(w)
        curves.append(c)
        finals.append(f)
    return torch.cat(ws), torch.stack(curves, 1), torch.tensor(finals, dtype=torch.float64)


def step_loss_and_grad(G, loss_fn, images, w_plus):
    """The reference's loss [N] and its gradient with respect to ``w_plus`` (for equivalence tests)."""
    w = w_plus.detach().clone().requires_grad_(True)
    value = loss(vgg_slices(loss_fn), synthesis(G, w), images)
    value.sum().backward()
    return value.detach(), w.grad


__all__ = ["embed_naive", "embed_one", "loss", "perceptual_features", "step_loss_and_grad", "synthesis"]
