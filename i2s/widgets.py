"""Live exploration of the latent space (notebook 05): sliders for the morph λ (§4.1), the
crossover layer (§4.2), the expression strength and threshold (§4.3), and the generator's own
edit directions (SeFa, :mod:`i2s.directions`; the static grid is ``fig05_directions``). Without a live kernel
(papermill) the same call renders static grids of the slider values instead.

The expression threshold follows :func:`i2s.edits.expression_rule`: absolute (the paper's
1.0) for the paper tier, relative to the difference's mean row norm for every other tier, where
the absolute rule would zero the direction and the slider would change nothing."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Sequence

import torch

from .edits import ExpressionRule, crossover, expression_rule, expression_transfer, morph
from .io import tensor_to_pil

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _png(x: torch.Tensor, scale: int = 3) -> bytes:
    img = tensor_to_pil(x)
    img = img.resize((img.width * scale, img.height * scale), resample=0)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def explorer(s, w: torch.Tensor, labels: Sequence[str], names: Sequence[str], w_style: torch.Tensor,
             style_names: Sequence[str], w_neutral: torch.Tensor, w_smiling: torch.Tensor, interactive: bool = True,
             rule: "ExpressionRule | None" = None):
    """Three panels: morph (image A, image B, λ), crossover (content, style, layer), expression
    (target, λ, threshold; direction from the first neutral/smiling pair; ``rule``: the
    threshold rule, default :func:`i2s.edits.expression_rule` of the generator; λ = 1 is
    the source's own change). Returns the widget (``interactive``) or the static grids as
    figures by name (``morph``, ``crossover``, ``expression``: what
    :class:`i2s.experiments.ExplorerGrids` saves)."""
    G = s.G
    rule = rule or expression_rule(G)

    def render(code: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return G.synthesis(code[None].to(s.device)).cpu()[0]

    short = [n.split("/")[-1] for n in names]
    if not interactive:
        return _static(s, w, short, w_style, [n.split("/")[-1] for n in style_names], w_neutral, w_smiling, render,
                       rule)

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

    sopts = list(zip([n.split("/")[-1] for n in style_names], range(len(style_names))))
    content = W.Dropdown(options=opts, value=0, description="content")
    style = W.Dropdown(options=sopts, value=0, description="style")
    layer = W.IntSlider(value=G.num_layers // 2, min=0, max=G.num_layers, description="layer")
    cross_box = panel("Crossover: first layers from content", [content, style, layer],
                      lambda i, j, k: render(crossover(w[i], w_style[j], k)))

    target = W.Dropdown(options=opts, value=0, description="target")
    strength = W.FloatSlider(value=0.0, min=-1.5, max=1.5, step=0.25, description="λ")
    thresh = W.FloatSlider(value=rule.threshold, min=0.0, max=3.0 if rule.relative else 5.0, step=0.25,
                           description="× mean norm" if rule.relative else "threshold")
    kind = "relative threshold (× mean row norm)" if rule.relative else "the paper's absolute threshold"
    expr_box = panel(f"Expression transfer (§4.3), {kind}; λ = 1: the source's own change", [target, strength, thresh],
                     lambda i, l, t: render(expression_transfer(w[i], w_neutral[0], w_smiling[0], l, t,
                                                                rule.normalize, rule.relative)))  # type: ignore[arg-type]
    from .directions import apply, directions_for

    dirs = directions_for(G, "sefa")
    which = W.Dropdown(options=opts, value=0, description="image")
    k = W.IntSlider(value=0, min=0, max=len(dirs.vectors) - 1, description="direction")
    amount = W.FloatSlider(value=0.0, min=-4.0, max=4.0, step=0.5, description="std")
    dir_box = panel("Directions from G alone (SeFa)", [which, k, amount],
                    lambda i, d, a_: render(apply(w[i], dirs, d, a_)))
    return W.HBox([morph_box, cross_box, expr_box, dir_box])  # shown as the cell's value


def _static(s, w, short, w_style, style_short, w_neutral, w_smiling, render,
            rule: ExpressionRule) -> dict[str, "Figure"]:
    """The slider values as grids (for papermill and static HTML), by name."""
    from .plots import image_rows

    lams = [0.0, 0.25, 0.5, 0.75, 1.0]
    morph_row = torch.stack([render(morph(w[0], w[1], l)) for l in lams])
    layers = list(range(0, s.G.num_layers + 1, max(1, s.G.num_layers // 5)))
    cross_row = torch.stack([render(crossover(w[0], w_style[0], k)) for k in layers])
    # relative: a row at 2 x the mean norm is rare, so the grid stays at 0-1.5 (all rows, about half, the largest)
    strengths, thresholds = [-1.0, -0.5, 0.0, 0.5, 1.0], ([0.0, 0.5, 1.0, 1.5] if rule.relative else [0.5, 1.0, 2.0])
    expr_rows = [torch.stack([render(expression_transfer(w[0], w_neutral[0], w_smiling[0], l, t, rule.normalize,
                                                         rule.relative))  # type: ignore[arg-type]
                              for l in strengths]) for t in thresholds]
    unit = " × mean row norm" if rule.relative else ""
    kind = "relative threshold" if rule.relative else "the paper's absolute threshold"
    return dict(
        morph=image_rows([morph_row], [f"{short[0]} → {short[1]}"], [f"λ={l}" for l in lams],
                         f"Fig. 4 (§4.1) explorer: morph λ·A + (1 − λ)·B, A = {short[0]}, B = {short[1]}"),
        crossover=image_rows([cross_row], [f"content: {short[0]}"], [f"layers 0–{k - 1} from the content" if k else
                                                                      "all layers from the style" for k in layers],
                             f"Fig. 6 (§4.2) explorer: crossover split layer, content {short[0]}, "
                             f"style {style_short[0]}"),
        expression=image_rows(expr_rows, [f"threshold {t}{unit}" for t in thresholds], [f"λ={l}" for l in strengths],
                              f"Fig. 7 (§4.3) explorer: expression strength λ (1: the source's own change) and threshold ({kind}), "
                              f"target {short[0]}"),
    )
