"""The edit commands of ``i2s``: from photos or latent files to edited images in one command.

    i2s edit photo.jpg --align --out out/                      # SeFa direction 0, strengths -3..3
    i2s crossover content.jpg --style style.jpg --out out/     # §4.2
    i2s expression target.jpg --neutral a.jpg --expressive b.jpg --out out/   # §4.3
    i2s directions --model mini --out out/                     # a grid of the top directions

Every input is a latent file (``X.latent.pt`` from ``i2s embed``) or a photo; photos are
aligned (``--align``; faces) or centre-cropped and embedded on the way through the embedding
cache, so a second run reuses the latents. Outputs: one PNG per edited image, the new latents with
metadata (``*.latent.pt``) and ``grid.png``: one row per input with the photo as the generator
saw it, its reconstruction G(w) and each output labelled with its parameter, enlarged with
nearest-neighbour (:func:`i2s.plots.labelled_grid`; the true resolution in its caption). Outputs in
which dlib's face detector no longer finds a face (:func:`i2s.identity.face_detected`) are marked
there and named in one warning line.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import cli_common as common

if TYPE_CHECKING:
    import torch

__all__ = ["add_edit_parsers", "write_grid", "model_caption"]


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


@dataclass
class _Input:
    """One input of a command: its name, W+ code [L, w_dim] and, for a photo, the photo as the
    generator sees it (aligned or centre-cropped, [3, R, R]); latent files have no photo."""
    name: str
    w: torch.Tensor
    photo: torch.Tensor | None
    file: str


def _latents(paths: list[Path], G, args) -> list[_Input]:
    """One :class:`_Input` per path: latent files as they are, photos embedded via the cache."""
    import torch

    from .runner import cached_embed
    from .data import load_target
    from .io import load_latent
    from .loss import EmbeddingLoss

    out: list[_Input] = []
    photos = []
    for p in paths:
        if p.name.endswith(".latent.pt"):
            w, meta = load_latent(p)
            if w.shape[-2:] != (G.num_layers, G.w_dim):
                raise SystemExit(f"[i2s] {p}: a latent of shape {tuple(w.shape)}, the generator {G.name} needs "
                                 f"({G.num_layers}, {G.w_dim}); give --model {meta.get('model', '?')}")
            out.append(_Input(p.name[: -len(".latent.pt")], w.reshape(G.num_layers, G.w_dim), None, p.name))
        else:
            photos.append(p)
            out.append(_Input(p.stem, None, None, p.name))  # type: ignore[arg-type]
    if photos:
        x = torch.cat([load_target(p, G, align=args.align) for p in photos])
        print(f"[i2s] embedding {len(photos)} photo(s): {args.steps} steps (through the cache: a rerun is instant)")
        res = cached_embed(G, x, loss_fn=EmbeddingLoss(perceptual=args.perceptual), steps=args.steps, batch_size=8)
        it = iter(zip(res.w_plus, x))
        for inp in out:
            if inp.w is None:
                inp.w, inp.photo = next(it)
    return out


def _render(G, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
    """G.synthesis of [N, L, w_dim] codes in chunks of 8, on the CPU."""
    import torch

    with torch.no_grad():
        return torch.cat([G.synthesis(c.to(G.device), noise_mode=noise_mode).cpu() for c in w.split(8)])


def _save_outputs(G, names: list[str], w: torch.Tensor, imgs: torch.Tensor, out: Path, meta: dict) -> None:
    """One PNG and one latent file per edited image."""
    from .io import save_latent, save_png

    for name, wi, img in zip(names, w, imgs):
        save_png(img, out / f"{name}.png")
        save_latent(out / f"{name}.latent.pt", wi, {**meta, "image": name, "model": G.name, "tier": G.info.get("tier")})


def _face_check(G, imgs: torch.Tensor) -> tuple[list[bool] | None, str | None]:
    """Which images dlib's face detector still finds a face in, at the generator's training framing
    (:func:`i2s.identity.face_detected`); (None, why) where that cannot be checked (no face box
    measured for this framing, e.g. FFHQ's zoom 1 or a non-face generator; dlib missing)."""
    from .identity import face_detected

    zoom = float(G.info.get("align_zoom", 1.0))
    try:
        return [bool(v) for v in face_detected(imgs, zoom)], None
    except (ValueError, ImportError, FileNotFoundError) as e:
        return None, f"face check skipped: {e}"


def _photo_cells(inp: _Input, recon: torch.Tensor, align: bool) -> list[tuple[torch.Tensor | None, str]]:
    """The first two cells of an input's row: its photo as the generator sees it, and G(w)."""
    how = "aligned" if align else "centre-cropped"
    photo = (inp.photo, f"input {inp.file} ({how})") if inp.photo is not None else \
        (None, f"{inp.file}: a latent file, no photo")
    return [photo, (recon, "reconstruction G(w)")]


def _checks(name: str, outputs: list[str]) -> list[tuple[str, bool]]:
    """The face check of a photo row (:func:`write_grid`): not the photo, its reconstruction and every output."""
    return [("", False), (f"{name} (reconstruction)", True)] + [(nm, True) for nm in outputs]


def model_caption(G) -> str:
    """The grid caption's model line: the generator and its tier (:func:`i2s.models.describe_tier`)."""
    from .models import describe_tier

    return f"model: {G.name} ({describe_tier(G)})"


def write_grid(G, path: Path, rows: list[list], row_labels: list[str], caption: str,
               checked: list[list[tuple[str, bool]]] | None = None) -> None:
    """The labelled grid (:func:`i2s.plots.labelled_grid`) as a PNG whose text chunk lists every
    label. ``checked[i][j]`` = (name, whether it must still be a face) per cell: those cells are
    run through :func:`_face_check`; the ones without a face are marked in the grid and named in
    one warning line."""
    import io as _io

    import torch
    from PIL.PngImagePlugin import PngInfo

    from .io import atomic_write_bytes
    from .plots import labelled_grid

    flagged, note = None, None
    if checked is not None:
        idx = [(i, j) for i, r in enumerate(checked) for j, (_, want) in enumerate(r)
               if want and rows[i][j] is not None and rows[i][j][0] is not None]
        faces, note = _face_check(G, torch.stack([rows[i][j][0] for i, j in idx])) if idx else ([], None)
        if faces is not None:
            flagged = [[False] * len(r) for r in rows]
            lost = []
            for (i, j), ok in zip(idx, faces):
                if not ok:
                    flagged[i][j] = True
                    lost.append(checked[i][j][0])
            note = f"face check: dlib's detector finds no face in {len(lost)} of {len(idx)} images"
            if lost:
                print(f"[i2s] warning: no longer a face (dlib's detector finds none; marked NOT A FACE in "
                      f"{path.name}): {', '.join(lost)}", file=sys.stderr)
        else:
            print(f"[i2s] {note}")
    img = labelled_grid(rows, row_labels, caption + (f"\n{note}" if note else ""), flagged)
    info = PngInfo()
    for key, value in img.info.items():
        if isinstance(value, str):
            info.add_itxt(key, value)
    buf = _io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    atomic_write_bytes(path, buf.getvalue())


def _inputs_line(inputs: list[_Input]) -> str:
    """The caption's line naming the inputs (and saying which are latent files, without a photo)."""
    latent = [i.file for i in inputs if i.photo is None]
    return f"inputs: {', '.join(dict.fromkeys(i.file for i in inputs))}" + (
        f" ({', '.join(latent)}: latent files, no photo: the reconstruction only)" if latent else "")


def _finish(G, names: list[str], w: torch.Tensor, imgs: torch.Tensor, out: Path, meta: dict, rows: list[list],
            row_labels: list[str], caption: str, checked: list[list[tuple[str, bool]]]) -> None:
    """Per-image PNGs and latents, then grid.png."""
    _save_outputs(G, names, w, imgs, out, meta)
    write_grid(G, out / "grid.png", rows, row_labels, caption, checked)
    print(f"[i2s] wrote {len(names)} images, their latents and grid.png (labelled; {len(rows)} row"
          f"{'s' if len(rows) > 1 else ''} x {max(len(r) for r in rows)} columns) to {out}")


def cmd_edit(args: argparse.Namespace) -> int:
    import torch

    from .directions import apply, directions_for

    paths = _check_inputs(args.inputs)
    G = common.load_generator_or_report(args.model, args.device)
    if G is None:
        return 2
    d = directions_for(G, args.method, k=max(16, args.direction + 1), layers=args.layers)
    print(f"[i2s] {d.describe()}; direction {args.direction}, strengths {args.strengths} (in std of w)")
    inputs = _latents(paths, G, args)
    recons = _render(G, torch.stack([i.w for i in inputs]))
    s = torch.tensor(args.strengths)
    w = torch.cat([apply(i.w, d, args.direction, s) for i in inputs])
    imgs, n = _render(G, w), len(args.strengths)
    names = [f"{i.name}_{args.method}{args.direction}_{v:+g}" for i in inputs for v in args.strengths]
    rows, checked = [], []
    for r, (inp, rec) in enumerate(zip(inputs, recons)):
        rows.append(_photo_cells(inp, rec, args.align) + [(imgs[r * n + k], f"strength {v:+g}")
                                                          for k, v in enumerate(args.strengths)])
        checked.append(_checks(inp.name, names[r * n:(r + 1) * n]))
    a, b = d.layers
    caption = (f"i2s edit: {d.method} direction {args.direction} on style layers {a}-{b - 1}, "
               f"strengths in standard deviations of w\n{model_caption(G)}\n{_inputs_line(inputs)}")
    _finish(G, names, w, imgs, Path(args.out), {"edit": "direction", "method": args.method,
            "direction": args.direction, "layers": list(d.layers)}, rows, [i.name for i in inputs], caption, checked)
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
    contents, style_in = _latents(paths, G, args), _latents(styles, G, args)
    recons = _render(G, torch.stack([i.w for i in contents + style_in]))
    c_rec, s_rec = recons[:len(contents)], recons[len(contents):]
    w = torch.stack([crossover(c.w, st.w, layer) for c in contents for st in style_in])
    names = [f"{c.name}_x_{st.name}" for c in contents for st in style_in]
    imgs, n = _render(G, w), len(style_in)
    print(f"[i2s] crossover at layer {layer} of {G.num_layers}: content rows 0-{layer - 1}, style rows {layer}-")
    rows: list[list] = [[None, None] + [_photo_cells(st, rec, args.align)[0] for st, rec in zip(style_in, s_rec)],
                        [None, None] + [(rec, f"style {st.name}: G(w)") for st, rec in zip(style_in, s_rec)]]
    checked = [[("", False)] * (2 + n), [("", False)] * 2 + [(f"{st.name} (reconstruction)", True) for st in style_in]]
    for r, (c, rec) in enumerate(zip(contents, c_rec)):
        rows.append(_photo_cells(c, rec, args.align) + [(imgs[r * n + k], f"split layer {layer}: style {st.name}")
                                                       for k, st in enumerate(style_in)])
        checked.append(_checks(c.name, names[r * n:(r + 1) * n]))
    caption = (f"i2s crossover (§4.2): W+ rows 0-{layer - 1} from the content (each row), rows {layer}-"
               f"{G.num_layers - 1} from the style (each column, top)\n{model_caption(G)}\n"
               f"{_inputs_line(contents + style_in)}")
    _finish(G, names, w, imgs, Path(args.out), {"edit": "crossover", "layer": layer}, rows,
            ["styles", "styles: G(w)"] + [c.name for c in contents], caption, checked)
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
    src = _latents(pair, G, args)
    w2, w3 = src[0].w, src[1].w
    rule = expression_rule(G, args.threshold)  # the paper tier: absolute 1.0; the others: relative 0.5
    if args.relative is not None and args.relative != rule.relative:
        rule = ExpressionRule(args.threshold if args.threshold is not None else (0.5 if args.relative else 1.0),
                              relative=args.relative)
    targets = _latents(paths, G, args)
    ws = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for t in targets:
            ws.append(expression_transfer(t.w, w2, w3, torch.tensor(args.strengths), rule.threshold, rule.normalize,  # type: ignore[arg-type]
                                          rule.relative))
    for msg in dict.fromkeys(str(c.message) for c in caught):  # one warning per cause
        print(f"[i2s] warning: {msg}", file=sys.stderr)
    print(f"[i2s] expression transfer: {rule.describe()}")
    names = [f"{t.name}_expr{v:+g}" for t in targets for v in args.strengths]
    w = torch.cat(ws)
    imgs, n = _render(G, w), len(args.strengths)
    recons = _render(G, torch.stack([i.w for i in src + targets]))
    source_row: list = []
    for role, inp, rec in zip(("neutral w2", "expressive w3"), src, recons[:2]):
        source_row += [(img, f"{role}: {label}") for img, label in _photo_cells(inp, rec, args.align)]
    rows, checked = [source_row], [[("", False), (f"{src[0].name} (reconstruction)", True), ("", False),
                                    (f"{src[1].name} (reconstruction)", True)]]
    for r, (t, rec) in enumerate(zip(targets, recons[2:])):
        rows.append(_photo_cells(t, rec, args.align) + [(imgs[r * n + k], f"λ = {v:g}")
                                                        for k, v in enumerate(args.strengths)])
        checked.append(_checks(t.name, names[r * n:(r + 1) * n]))
    caption = (f"i2s expression (§4.3): w1 + λ (w3 - w2), w2 and w3 from the source pair (top row); "
               f"{rule.describe()}\n{model_caption(G)}\n{_inputs_line(src + targets)}")
    _finish(G, names, w, imgs, Path(args.out), {"edit": "expression", "threshold": rule.threshold,
            "relative": rule.relative, "normalize": rule.normalize}, rows,
            ["source pair"] + [t.name for t in targets], caption, checked)
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
    samples = _render(G, w)
    names, ws, rows, checked, row_labels = [], [], [], [], []
    for k in range(args.top):
        for i in range(args.samples):
            ws.append(apply(w[i], d, k, torch.tensor(args.strengths)))
            names += [f"dir{k:02d}_sample{i}_{v:+g}" for v in args.strengths]
    w_out = torch.cat(ws)
    imgs, n = _render(G, w_out), len(args.strengths)
    for r in range(args.top * args.samples):
        k, i = divmod(r, args.samples)
        rows.append([(samples[i], f"sample {i}: G(w)")] + [(imgs[r * n + j], f"strength {v:+g}")
                                                           for j, v in enumerate(args.strengths)])
        checked.append([("", False)] + [(nm, True) for nm in names[r * n:(r + 1) * n]])
        row_labels.append(f"direction {k}, sample {i}")
    a, b = d.layers
    caption = (f"i2s directions: the top {args.top} {d.method} directions on style layers {a}-{b - 1}, strengths in "
               f"standard deviations of w\n{model_caption(G)}\nno photo: random samples (seed {args.seed}, "
               f"truncation psi 0.7) in the first column")
    _finish(G, names, w_out, imgs, Path(args.out), {"edit": "direction", "method": args.method}, rows, row_labels,
            caption, checked)
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
