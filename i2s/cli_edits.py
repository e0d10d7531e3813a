"""The edit commands of ``i2s``: from photos or latent files to edited images in one command.

    i2s edit photo.jpg --align --out out/                      # SeFa direction 0, strengths -3..3
    i2s crossover content.jpg --style style.jpg --out out/     # §4.2
    i2s expression target.jpg --neutral a.jpg --expressive b.jpg --out out/   # §4.3
    i2s directions --model mini --out out/                     # a grid of the top directions

Every input is a latent file (``X.latent.pt`` from ``i2s embed``) or a photo; photos are
aligned (``--align``; faces) or centre-cropped and embedded on the way through the embedding
cache, so a second run reuses the latents. Outputs: one PNG per edited image, a grid, and the
new latents with metadata (``*.latent.pt``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import cli_common as common

if TYPE_CHECKING:
    import torch

__all__ = ["add_edit_parsers"]


def _strengths(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"want comma-separated numbers like -3,-1.5,0,1.5,3; got {text!r}") from None
    if not vals:
        raise argparse.ArgumentTypeError("no strengths given")
    return vals


def _layer_range(text: str) -> tuple[int, int]:
    try:
        a, _, b = text.partition("-")
        lo, hi = int(a), int(b if b else a)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want FIRST-LAST style layers like 0-4; got {text!r}") from None
    if lo < 0 or hi < lo:
        raise argparse.ArgumentTypeError(f"want 0 <= FIRST <= LAST; got {text!r}")
    return lo, hi + 1


def _check_inputs(paths: list[str]) -> list[Path]:
    """Inputs are checked before any network loads: a missing file costs nothing."""
    bad = [p for p in paths if not Path(p).is_file()]
    if bad:
        raise SystemExit(f"[i2s] no such file: {', '.join(bad)}; check the path(s)")
    return [Path(p) for p in paths]


def _latents(paths: list[Path], G, args) -> list[tuple[str, torch.Tensor]]:
    """(name, W+ [L, w_dim]) per input: latent files as they are, photos embedded via the cache."""
    import torch

    from .runner import cached_embed
    from .data import load_target
    from .io import load_latent
    from .loss import EmbeddingLoss

    out: list[tuple[str, torch.Tensor]] = []
    photos = []
    for p in paths:
        if p.name.endswith(".latent.pt"):
            w, meta = load_latent(p)
            if w.shape[-2:] != (G.num_layers, G.w_dim):
                raise SystemExit(f"[i2s] {p}: a latent of shape {tuple(w.shape)}, the generator {G.name} needs "
                                 f"({G.num_layers}, {G.w_dim}); give --model {meta.get('model', '?')}")
            out.append((p.name[: -len(".latent.pt")], w.reshape(G.num_layers, G.w_dim)))
        else:
            photos.append(p)
            out.append((p.stem, None))  # type: ignore[arg-type]
    if photos:
        x = torch.cat([load_target(p, G, align=args.align) for p in photos])
        print(f"[i2s] embedding {len(photos)} photo(s): {args.steps} steps (through the cache: a rerun is instant)")
        res = cached_embed(G, x, loss_fn=EmbeddingLoss(perceptual=args.perceptual), steps=args.steps, batch_size=8)
        it = iter(res.w_plus)
        out = [(n, w if w is not None else next(it)) for n, w in out]
    return out


def _write(G, names: list[str], w: torch.Tensor, out: Path, meta: dict, cols: int) -> None:
    import torch

    from .io import image_grid, save_latent, save_png

    with torch.no_grad():
        imgs = torch.cat([G.synthesis(c.to(G.device)).cpu() for c in w.split(8)])
    for name, wi, img in zip(names, w, imgs):
        save_png(img, out / f"{name}.png")
        save_latent(out / f"{name}.latent.pt", wi, {**meta, "image": name, "model": G.name})
    save_png(image_grid(imgs, cols=cols), out / "grid.png")
    print(f"[i2s] wrote {len(names)} images, their latents and grid.png ({len(names) // cols} x {cols}) to {out}")


def cmd_edit(args: argparse.Namespace) -> int:
    import torch

    from .directions import apply, directions_for

    paths = _check_inputs(args.inputs)
    G = common.load_generator_or_report(args.model, args.device)
    if G is None:
        return 2
    d = directions_for(G, args.method, k=max(16, args.direction + 1), layers=args.layers)
    print(f"[i2s] {d.describe()}; direction {args.direction}, strengths {args.strengths} (in std of w)")
    rows, names = [], []
    for name, w in _latents(paths, G, args):
        rows.append(apply(w, d, args.direction, torch.tensor(args.strengths)))
        names += [f"{name}_{args.method}{args.direction}_{s:+g}" for s in args.strengths]
    _write(G, names, torch.cat(rows), Path(args.out), {"edit": "direction", "method": args.method,
           "direction": args.direction, "layers": list(d.layers)}, cols=len(args.strengths))
    return 0


def cmd_crossover(args: argparse.Namespace) -> int:
    import torch

    from .edits import crossover, default_crossover_layer

    paths, styles = _check_inputs(args.inputs), _check_inputs(args.style)
    G = common.load_generator_or_report(args.model, args.device)
    if G is None:
        return 2
    layer = default_crossover_layer(G.num_layers) if args.layer is None else args.layer
    if not 0 <= layer <= G.num_layers:
        print(f"[i2s] --layer must be in 0..{G.num_layers}", file=sys.stderr)
        return 2
    contents, style_w = _latents(paths, G, args), _latents(styles, G, args)
    names, ws = [], []
    for sn, sw in style_w:
        for cn, cw in contents:
            ws.append(crossover(cw, sw, layer))
            names.append(f"{cn}_x_{sn}")
    print(f"[i2s] crossover at layer {layer} of {G.num_layers}: content rows 0-{layer - 1}, style rows {layer}-")
    _write(G, names, torch.stack(ws), Path(args.out), {"edit": "crossover", "layer": layer}, cols=len(contents))
    return 0


def cmd_expression(args: argparse.Namespace) -> int:
    import torch

    import warnings

    from .edits import expression_transfer
    from .edits import ExpressionRule, expression_rule

    paths = _check_inputs(args.inputs)
    pair = _check_inputs([args.neutral, args.expressive])
    G = common.load_generator_or_report(args.model, args.device)
    if G is None:
        return 2
    (_, w2), (_, w3) = _latents(pair, G, args)
    rule = expression_rule(G, args.threshold)  # the paper tier: absolute 1.0; the others: relative 0.5
    if args.relative is not None and args.relative != rule.relative:
        rule = ExpressionRule(args.threshold if args.threshold is not None else (0.5 if args.relative else 1.0),
                              relative=args.relative)
    names, ws = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, w1 in _latents(paths, G, args):
            ws.append(expression_transfer(w1, w2, w3, torch.tensor(args.strengths), rule.threshold, rule.normalize,  # type: ignore[arg-type]
                                          rule.relative))
            names += [f"{name}_expr{s:+g}" for s in args.strengths]
    for msg in dict.fromkeys(str(c.message) for c in caught):  # one warning per cause
        print(f"[i2s] warning: {msg}", file=sys.stderr)
    print(f"[i2s] expression transfer: {rule.describe()}")
    _write(G, names, torch.cat(ws), Path(args.out), {"edit": "expression", "threshold": rule.threshold,
           "relative": rule.relative, "normalize": rule.normalize}, cols=len(args.strengths))
    return 0


def cmd_directions(args: argparse.Namespace) -> int:
    import torch

    from .directions import apply, directions_for

    G = common.load_generator_or_report(args.model, args.device)
    if G is None:
        return 2
    d = directions_for(G, args.method, k=max(16, args.top), layers=args.layers)
    z = torch.randn(args.samples, G.z_dim, generator=torch.Generator().manual_seed(args.seed)).to(G.device)
    with torch.no_grad():
        w = G.mapping(z, truncation_psi=0.7)
    names, ws = [], []
    for k in range(args.top):
        for i in range(args.samples):
            ws.append(apply(w[i], d, k, torch.tensor(args.strengths)))
            names += [f"dir{k:02d}_sample{i}_{s:+g}" for s in args.strengths]
    _write(G, names, torch.cat(ws), Path(args.out), {"edit": "direction", "method": args.method},
           cols=len(args.strengths))
    return 0


def _common(p: argparse.ArgumentParser, photos: bool = True) -> None:
    p.add_argument("--model", default="auto", help="generator: auto | ffhq | mini | PATH")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, ...")
    p.add_argument("--out", required=True, help="output folder")
    if photos:
        p.add_argument("--align", action="store_true", help="FFHQ-align photos of faces first (framed for the model)")
        p.add_argument("--steps", type=int, default=1000,
                       help="Algorithm 1 steps for photos (the paper: 5000; under a minute per photo on mini with a 2-core CPU at 1000)")
        p.add_argument("--perceptual", "--vgg", dest="perceptual", default="auto",
                       help="perceptual network: auto | random | efficientnet-lite0 | PATH (--vgg: the older spelling)")


def add_edit_parsers(sub) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    e = sub.add_parser("edit", help="move photos/latents along a direction found from the generator",
                       formatter_class=fmt)
    e.add_argument("inputs", nargs="+", help="photos or .latent.pt files")
    e.add_argument("--method", default="sefa", choices=["sefa", "ganspace"], help="how directions are found")
    e.add_argument("--direction", type=int, default=0, help="index of the direction (0 = the strongest)")
    e.add_argument("--strengths", type=_strengths, default=[-3.0, -1.5, 0.0, 1.5, 3.0],
                   help="comma-separated strengths in standard deviations of w along the direction (write --strengths=-3,0,3 when the first is negative)")
    e.add_argument("--layers", type=_layer_range, default=None, help="style layers FIRST-LAST (default: all)")
    _common(e)
    e.set_defaults(func=cmd_edit)

    c = sub.add_parser("crossover", help="style transfer by crossover of W+ codes (§4.2)", formatter_class=fmt)
    c.add_argument("inputs", nargs="+", help="content photos or .latent.pt files")
    c.add_argument("--style", nargs="+", required=True, help="style photos or .latent.pt files")
    c.add_argument("--layer", type=int, default=None,
                   help="first style row (default: half the layers, 9 of 18 at 1024 px as in the paper)")
    _common(c)
    c.set_defaults(func=cmd_crossover)

    x = sub.add_parser("expression", help="expression transfer w1 + λ (w3 - w2) (§4.3)", formatter_class=fmt)
    x.add_argument("inputs", nargs="+", help="target photos or .latent.pt files")
    x.add_argument("--neutral", required=True, help="the source person's neutral photo or latent (w2)")
    x.add_argument("--expressive", required=True, help="the same person's expressive photo or latent (w3)")
    x.add_argument("--strengths", type=_strengths, default=[-1.0, 0.0, 0.5, 1.0],
                   help="comma-separated λ values (1: the target moves as far as the source did from neutral to expressive)")
    x.add_argument("--threshold", type=float, default=None,
                   help="rows of w3 - w2 below it are zeroed (default: the paper's 1 for the paper tier, "
                        "0.5 x the mean row norm for the others)")
    x.add_argument("--relative", action=argparse.BooleanOptionalAction, default=None,
                   help="threshold relative to the mean row norm of w3 - w2 (default: on except for the paper tier)")
    _common(x)
    x.set_defaults(func=cmd_expression)

    d = sub.add_parser("directions", help="a grid of the generator's top directions", formatter_class=fmt)
    d.add_argument("--method", default="sefa", choices=["sefa", "ganspace"], help="how directions are found")
    d.add_argument("--top", type=int, default=5, help="how many directions")
    d.add_argument("--samples", type=int, default=2, help="random samples per direction")
    d.add_argument("--seed", type=int, default=0, help="seed of the samples")
    d.add_argument("--strengths", type=_strengths, default=[-3.0, -1.5, 0.0, 1.5, 3.0], help="strengths in std")
    d.add_argument("--layers", type=_layer_range, default=None, help="style layers FIRST-LAST (default: all)")
    _common(d, photos=False)
    d.set_defaults(func=cmd_directions)
