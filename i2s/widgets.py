"""Live exploration of the latent space (notebook 05): sliders for the morph λ, the crossover
layer, and the expression strength and threshold. Without a live kernel (papermill) the same
call renders static grids of the slider values instead."""

from __future__ import annotations

import io
from typing import Sequence

import torch

from .edits import crossover, expression_transfer, morph
from .io import tensor_to_pil


def _png(x: torch.Tensor, scale: int = 3) -> bytes:
    img = tensor_to_pil(x)
    img = img.resize((img.width * scale, img.height * scale), resample=0)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def explorer(s, w: torch.Tensor, labels: Sequence[str], names: Sequence[str], w_style: torch.Tensor,
             style_names: Sequence[str], w_neutral: torch.Tensor, w_smiling: torch.Tensor, interactive: bool = True):
    """Three panels: morph (image A, image B, λ), crossover (content, style, layer), expression
    (target, λ, threshold; direction from the first neutral/smiling pair). Returns the widget
    (``interactive``) or the saved static grids (:class:`i2s.experiments.ExplorerGrids`)."""
    G = s.G

    def render(code: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return G.synthesis(code[None].to(s.device)).cpu()[0]

    short = [n.split("/")[-1][:20] for n in names]
    if not interactive:
        return _static(s, w, short, w_style, w_neutral, w_smiling, render)

    import ipywidgets as W

    def panel(title: str, controls: list, fn) -> W.VBox:
        out = W.Image(format="png")

        def update(*_):
            out.value = _png(fn(*[c.value for c in controls]))

        for c in controls:
            c.observe(update, names="value")
        update()
        return W.VBox([W.HTML(f"<b>{title}</b>"), *controls, out])

    opts = list(zip(short, range(len(short))))
    a, b = W.Dropdown(options=opts, value=0, description="A"), W.Dropdown(options=opts, value=min(1, len(opts) - 1), description="B")
    lam = W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="λ")
    morph_box = panel("Morph: λ·A + (1−λ)·B", [a, b, lam], lambda i, j, l: render(morph(w[i], w[j], l)))

    sopts = list(zip([n.split("/")[-1][:20] for n in style_names], range(len(style_names))))
    content = W.Dropdown(options=opts, value=0, description="content")
    style = W.Dropdown(options=sopts, value=0, description="style")
    layer = W.IntSlider(value=G.num_layers // 2, min=0, max=G.num_layers, description="layer")
    cross_box = panel("Crossover: first layers from content", [content, style, layer],
                      lambda i, j, k: render(crossover(w[i], w_style[j], k)))

    target = W.Dropdown(options=opts, value=0, description="target")
    strength = W.FloatSlider(value=0.0, min=-6.0, max=6.0, step=0.5, description="λ")
    thresh = W.FloatSlider(value=1.0, min=0.0, max=5.0, step=0.25, description="threshold")
    expr_box = panel("Expression transfer", [target, strength, thresh],
                     lambda i, l, t: render(expression_transfer(w[i], w_neutral[0], w_smiling[0], l, threshold=t)))
    return W.HBox([morph_box, cross_box, expr_box])  # shown as the cell's value


def _static(s, w, short, w_style, w_neutral, w_smiling, render):
    """The slider values as grids (for papermill and static HTML), saved under the names of
    :class:`i2s.experiments.ExplorerGrids`."""
    from .experiments import ExplorerGrids
    from .plots import image_rows

    lams = [0.0, 0.25, 0.5, 0.75, 1.0]
    morph_row = torch.stack([render(morph(w[0], w[1], l)) for l in lams])
    layers = list(range(0, s.G.num_layers + 1, max(1, s.G.num_layers // 5)))
    cross_row = torch.stack([render(crossover(w[0], w_style[0], k)) for k in layers])
    strengths, thresholds = [-4.0, -2.0, 0.0, 2.0, 4.0], [0.5, 1.0, 2.0]
    expr_rows = [torch.stack([render(expression_transfer(w[0], w_neutral[0], w_smiling[0], l, threshold=t))
                              for l in strengths]) for t in thresholds]
    grids = ExplorerGrids(
        morph=image_rows([morph_row], [f"{short[0]}→{short[1]}"], [f"λ={l}" for l in lams], "Morph λ"),
        crossover=image_rows([cross_row], [short[0]], [f"layer {k}" for k in layers], "Crossover layer"),
        expression=image_rows(expr_rows, [f"threshold {t}" for t in thresholds], [f"λ={l}" for l in strengths],
                              "Expression strength and threshold"),
    )
    grids.save(s)
    return grids
