"""The ``i2s`` command: embed, embed-folder, edit, crossover, expression, directions, generate, morph, align, weights.

    i2s embed IMG... --model auto --space w+ --init mean --steps 5000 --out DIR
    i2s edit IMG... --align --out DIR
    i2s generate --model mini --seeds 0-15 --psi 0.7 --out DIR
    i2s morph A.latent.pt B.latent.pt --frames 8 --out DIR
    i2s weights list | fetch NAME | import NAME PATH | verify [NAME]

Exit codes (one meaning each; docs/what-happens-when.md): 0 done; 1 no input could be read;
2 usage (a bad option value, a missing file, an output folder that cannot be written); 3 done,
but some inputs were skipped; 4 a weight file was refused; 130 interrupted (143: SIGTERM).
torch is imported only once a command runs, so Ctrl-C at any time is a clean exit.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import cli_common as common
from .cli_common import (EXIT_INTERRUPTED, EXIT_NO_INPUT, EXIT_OK, EXIT_PARTIAL, EXIT_REFUSED,  # noqa: F401
                         EXIT_USAGE, UsageError, check_writable, plain_torch_text, resolve_device)

MAX_STEM = 120  # output names: long stems are cut (plus a hash) so NAME-target.png fits any file system


def _seeds(text: str) -> list[int]:
    """``0-7,10,12-13`` -> [0, ..., 7, 10, 12, 13] (an argparse type)."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                a, b = part.strip().split("-", 1) if not part.strip().startswith("-") else (part, "")
                lo, hi = int(a), int(b)
                if hi < lo or hi - lo > 100_000:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            elif part.strip():
                seeds.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"want seeds like 0-7,10,12-13; got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


_positive, _non_negative = common.at_least(1), common.at_least(0)


def safe_stem(stem: str) -> str:
    """A file stem short enough for every output name made from it (a hash keeps long ones unique)."""
    if len(stem.encode()) <= MAX_STEM:
        return stem
    import hashlib

    cut = stem.encode()[: MAX_STEM - 9].decode(errors="ignore")
    return f"{cut}-{hashlib.sha256(stem.encode()).hexdigest()[:8]}"


def cmd_embed(args: argparse.Namespace) -> int:
    import torch

    from .data import load_target
    from .embed import EmbedSettings
    from .io import read_csv_rows, save_latent, save_png, versions, write_csv
    from .loss import PERCEPTUAL_NETS, EmbeddingLoss, LossSettings
    from .models import describe_tier
    from .runner import RunOptions, cached_embed

    missing = [p for p in args.images if not Path(p).exists()]
    if missing and len(missing) == len(args.images):  # before any network loads
        raise UsageError(f"no such file: {', '.join(map(str, missing))}; check the path(s)")
    for p in missing:  # said now, not after the networks have loaded
        print(f"[i2s] skipped {p}: no such file; check the path", file=sys.stderr)
    out = Path(args.out)
    check_writable(out)
    named = ("auto", *PERCEPTUAL_NETS, *PERCEPTUAL_NETS.values())
    if args.perceptual not in named and not Path(args.perceptual).is_file():
        raise UsageError(f"--perceptual {args.perceptual}: no such file; give auto, random, efficientnet-lite0 or the "
                         "path of vgg16-397923af.pth (i2s weights fetch vgg16-imagenet)")
    G = common.load_generator_or_report(args.model, resolve_device(args.device))
    if G is None:
        return EXIT_REFUSED
    try:
        loss_fn = EmbeddingLoss(LossSettings(variant=args.loss, resize=None if args.no_resize else 256),
                                args.perceptual)
    except Exception as e:  # noqa: BLE001 - a bad or hostile VGG file: one line, nothing run
        from .weights.limits import first_line

        print(f"[i2s] cannot load the perceptual network --perceptual {args.perceptual}: "
              f"{plain_torch_text(first_line(e))}",
              file=sys.stderr)
        return EXIT_REFUSED
    print(f"[i2s] perceptual network: {loss_fn.perceptual_net}")

    names, targets, failed = [], [], [str(p) for p in missing]
    for path in [p for p in args.images if p not in missing]:
        try:
            targets.append(load_target(path, G, align=args.align))
            names.append(_unique_name(safe_stem(Path(path).stem), names))  # a.png, a.jpg, a-target.png never collide
        except Exception as e:  # a bad file is reported and skipped; the others go on
            print(f"[i2s] skipped {path}: {e}", file=sys.stderr)
            failed.append(str(path))
    if not targets:
        print("[i2s] no image could be read; nothing embedded", file=sys.stderr)
        return EXIT_NO_INPUT

    settings = EmbedSettings.make(space=args.space, init=args.init, steps=args.steps, schedule=args.schedule,
                                  seed=args.seed, loss=loss_fn.settings)
    from . import precision as P

    device_line = P.describe(settings.resolved_precision(G.device), G.device)
    print(f"[i2s] device: {device_line}")
    images = torch.cat(targets)
    csv_path = out / "embeddings.csv"
    rows = {r["image"]: r for r in read_csv_rows(csv_path)}  # earlier runs in this folder are kept

    def write(indices: list[int], res) -> None:
        """Outputs of finished images, as soon as they are done (or found in the cache)."""
        for msg in res.messages:
            print(f"[i2s] {msg}", file=sys.stderr)
        for j, i in enumerate(indices):
            name = names[i]
            meta = {**res.settings, "image": name, "tier": describe_tier(G), "model_info": G.info, "device": device_line,
                    "aligned": args.align, "final_loss": res.loss[j].item(), "versions": versions()}
            save_latent(out / f"{name}.latent.pt", res.w_plus[j], meta, latent=res.latent[j])
            save_png(res.images[j], out / f"{name}.png")
            save_png(images[i:i + 1], out / f"{name}-target.png")
            rows[name] = {"image": name, "loss": f"{res.loss[j].item():.6g}", "loss_x1e5": f"{res.loss[j].item() / 1e5:.4f}",
                          "dist_to_w_avg": f"{res.dist_to_w_avg[j].item():.4f}", "psnr_db": f"{res.psnr[j].item():.2f}",
                          "stopped_at": int(res.stopped_at[j]), "steps": settings.steps, "schedule": settings.schedule,
                          "space": settings.space, "init": settings.init, "model": G.name,
                          "perceptual_net": loss_fn.perceptual_net, "device": device_line}
        write_csv(csv_path, list(rows.values()))

    ckpt = None
    if args.checkpoint_every:
        ckpt = Path(args.checkpoint) if args.checkpoint else out / f".checkpoint-{'-'.join(names)[:80]}.pt"
    try:
        cached_embed(G, images, settings, loss_fn=loss_fn, batch_size=args.batch, on_done=write,
                     options=RunOptions(checkpoint=ckpt, checkpoint_every=args.checkpoint_every or 250))
    except ValueError as e:
        if "checkpoint" in str(e):  # another run's, or a damaged one: say where, and how to choose another
            raise UsageError(f"{e} (or give --checkpoint PATH)") from None
        raise
    for stale in out.glob(".checkpoint*.pt"):  # all images done: checkpoints of this and older runs go
        stale.unlink(missing_ok=True)
    print(f"[i2s] wrote {len(names)} embeddings to {out} (embeddings.csv)" + (f"; {len(failed)} skipped" if failed else ""))
    return EXIT_OK if not failed else EXIT_PARTIAL


def _unique_name(stem: str, taken: list[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, ... so that no output file of one image (NAME.png,
    NAME-target.png, NAME.latent.pt) has the name of another's."""
    def clashes(name: str) -> bool:
        return any(name == t or name == f"{t}-target" or f"{name}-target" == t for t in taken)

    name, k = stem, 2
    while clashes(name):
        name, k = f"{stem}-{k}", k + 1
    return name


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from .io import image_grid, save_png

    out = Path(args.out)
    check_writable(out)
    G = common.load_generator_or_report(args.model, args.device)
    if G is None:
        return EXIT_REFUSED
    seeds = args.seeds
    imgs = []
    with torch.no_grad():
        for s in seeds:
            z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(s)).to(G.device)
            img = G(z, truncation_psi=args.psi, noise_mode=args.noise).cpu()
            save_png(img, out / f"seed{s:04d}.png")
            imgs.append(img)
    save_png(image_grid(torch.cat(imgs), cols=min(8, len(imgs))), out / "grid.png")
    print(f"[i2s] wrote {len(seeds)} images and grid.png to {out}")
    return 0


def cmd_morph(args: argparse.Namespace) -> int:
    import torch

    from .cli_edits import model_caption, write_grid
    from .edits import morph
    from .io import load_latent, save_png

    from .io import LatentFileError
    from .weights.limits import quote

    try:
        w1, m1 = load_latent(args.a)
        w2, m2 = load_latent(args.b)
    except (LatentFileError, FileNotFoundError) as e:
        print(f"[i2s] cannot read the latent file: {e}", file=sys.stderr)
        return 2
    if m1.get("model") != m2.get("model"):
        print(f"[i2s] warning: the two latents come from different models ({quote(m1.get('model'))} vs "
              f"{quote(m2.get('model'))})", file=sys.stderr)
    model = args.model
    if model is None:
        model = _model_name_for(m1)
        if model is None:  # a latent file never makes i2s load a file it names
            print(f"[i2s] {args.a} records the model {quote(m1.get('model'))}, which is not one of the kit's "
                  f"names ({', '.join(_known_models())}); choose the generator with --model NAME or --model PATH",
                  file=sys.stderr)
            return 2
    elif model not in _known_models():
        print(f"[i2s] morph: loading the generator from the file {model} (given with --model)")
    G = common.load_generator_or_report(model, args.device)
    if G is None:
        return 2
    lams = torch.linspace(1.0, 0.0, args.frames)  # from A (λ=1) to B (λ=0)
    frames = morph(w1, w2, lams).to(G.device)
    with torch.no_grad():
        imgs = G.synthesis(frames, noise_mode=m1.get("noise_mode", "const")).cpu()
    out = Path(args.out)
    for k, img in enumerate(imgs):
        save_png(img, out / f"morph{k:02d}.png")
    a, b = Path(args.a).name, Path(args.b).name
    ends = {len(imgs) - 1: ": B, G(w_B)", 0: ": A, G(w_A)"}  # the two reconstructions
    cells = [(img, f"λ = {lam:.2f}" + ends.get(k, "")) for k, (img, lam) in enumerate(zip(imgs, lams.tolist()))]
    write_grid(G, out / "morph-strip.png", [cells], ["A → B"],
               f"i2s morph (§4.1): λ w_A + (1 - λ) w_B, from A = {a} to B = {b}\n{model_caption(G)}\n"
               f"inputs: latent files, no photos: λ = 1 and λ = 0 are the reconstructions G(w_A), G(w_B)",
               [[(f"frame {k} (λ = {lam:.2f})", True) for k, lam in enumerate(lams.tolist())]])
    print(f"[i2s] wrote {len(imgs)} frames and morph-strip.png (labelled, each λ) to {out}")
    return 0


def _known_models() -> tuple[str, ...]:
    """Generator names a latent file's metadata may select (:data:`i2s.models.MODEL_NAMES` and
    ``auto``; anything else needs --model)."""
    from .models import MODEL_NAMES

    return ("auto", *MODEL_NAMES)


def _model_name_for(meta: dict) -> str | None:
    """The load_generator name of the model recorded in a latent file, if it is one of the kit's
    names (:func:`_known_models`, ``stylegan1-ffhq-1024``, ``mini-faces64``); ``None`` for anything
    else, such as a path: the file must not choose which file is loaded."""
    from .models import short_name

    name = meta.get("model", "auto")
    if not isinstance(name, str):
        return None
    name = short_name(name)
    return name if name in _known_models() else None


def cmd_align(args: argparse.Namespace) -> int:
    """``i2s align IMG... --out DIR --size N [--zoom Z]``: FFHQ alignment (§3.1, "We use the code
    provided by StyleGAN to preprocess the face images") of every face in each photo.

    Writes ``<stem>.png`` for a photo with one face, ``<stem>_01.png``, ``<stem>_02.png``, ... (left
    to right) for several. A photo that cannot be read or has no face is reported on stderr and
    skipped; exit code 0 when all succeeded, 3 when any failed.
    """
    from .align import ImageReadError, LandmarkModelMissing, NoFaceError
    from .align import align as align_faces
    from .io import save_png

    if args.size < 1 or args.zoom <= 0:
        print(f"[i2s] --size must be >= 1 and --zoom > 0 (got {args.size}, {args.zoom})", file=sys.stderr)
        return 2
    out = Path(args.out)
    failed, written = [], 0
    for path in args.images:
        try:
            faces = align_faces(path, size=args.size, zoom=args.zoom)
        except (LandmarkModelMissing, ImportError) as e:  # set-up problem: stop, every file would fail
            print(f"[i2s] cannot align: {e}", file=sys.stderr)
            return 1
        except NoFaceError:
            print(f"[i2s] {path}: no face found (dlib HOG detector). Fix: use a photo with a larger, frontal, "
                  "well-lit face; for a non-face image (cat, car, painting) skip alignment and let `i2s embed` "
                  "centre-crop it (omit --align).", file=sys.stderr)
            failed.append(str(path))
            continue
        except ImageReadError as e:
            print(f"[i2s] {e}. Fix: check the path and that the file is a complete JPEG/PNG image "
                  "(re-download or re-export it).", file=sys.stderr)
            failed.append(str(path))
            continue
        stem = Path(path).stem
        names = [f"{stem}.png"] if len(faces) == 1 else [f"{stem}_{k:02d}.png" for k in range(1, len(faces) + 1)]
        for face, name in zip(faces, names):
            save_png(face, out / name)
            written += 1
        print(f"[i2s] {path}: {len(faces)} face(s) -> {', '.join(names)}")
    print(f"[i2s] wrote {written} aligned face(s) ({args.size} px, zoom {args.zoom:g}) to {out}"
          + (f"; {len(failed)} file(s) failed: {', '.join(failed)}" if failed else ""))
    return 3 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = argparse.ArgumentParser(prog="i2s", description="Image2StyleGAN reproduction kit (Abdal, Qin, Wonka, ICCV 2019)",
                                formatter_class=fmt, epilog="exit codes: 0 done, 1 no input readable, 2 usage, "
                                "3 some inputs skipped, 4 weight file refused, 130 interrupted")
    p.add_argument("--version", action="version", version=f"i2s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    device_help = "auto (a GPU when there is one), cpu, cuda, cuda:1, ..."

    e = sub.add_parser("embed", help="embed images (Algorithm 1)", formatter_class=fmt,
                       description="Embed photos into the generator's latent space (Algorithm 1). Writes NAME.latent.pt "
                                   "(the W+ code and all settings), NAME.png (the reconstruction), NAME-target.png "
                                   "(what was embedded) and embeddings.csv (one row per image, earlier runs kept).")
    e.add_argument("images", nargs="+", help="image files (JPEG, PNG, WebP, ...)")
    e.add_argument("--model", default="auto", help="auto | ffhq | mini | mini-v1 | random-ffhq | random-mini | PATH")
    e.add_argument("--space", default="w+", choices=["w+", "w", "z"],
                   help="latent space (§3.3): w+ one w per style layer (the paper's), w one for all, z")
    e.add_argument("--init", default="mean", choices=["mean", "uniform", "normal", "encoder"],
                   help="initial latent (§5.1): mean = w̄, uniform = U[-1, 1], normal = N(0, 1), encoder = i2s.encoder")
    e.add_argument("--steps", type=_non_negative, default=None,
                   help="Adam steps; default 5000 (the paper's; ~4 min per image on mini with a 2-core CPU), 1250 with --schedule fast")
    e.add_argument("--schedule", default="paper", choices=["paper", "fast"],
                   help="paper: Adam lr 0.01 constant; fast: opt-in lr ramp to 0.8 and cosine ramp-down, 1250 steps; "
                        "latents land ~5x farther from w̄: for reconstruction (docs/performance.md)")
    e.add_argument("--loss", default="full", choices=["full", "mse", "conv3_2", "mse+conv3_2", "perceptual"],
                   help="the loss of Eq. 1 or an ablation of Fig. 9")
    e.add_argument("--no-resize", action="store_true", help="perceptual loss at full resolution (Fig. 12)")
    e.add_argument("--perceptual", "--vgg", dest="perceptual", default="auto",
                   help="perceptual network: auto | random | efficientnet-lite0 | PATH to vgg16-397923af.pth "
                        "(--vgg: the older spelling)")
    e.add_argument("--align", action="store_true",
                   help="FFHQ-align faces first (dlib), framed for the model (zoom 0.7 for mini); otherwise centre-crop")
    e.add_argument("--batch", type=_positive, default=8, help="images optimised together")
    e.add_argument("--seed", type=int, default=0, help="seed of the uniform/normal initial latent")
    e.add_argument("--device", default="auto", help=device_help)
    e.add_argument("--checkpoint-every", type=_non_negative, default=250,
                   help="save a resumable checkpoint every N steps (0: none); rerun the same command to resume")
    e.add_argument("--checkpoint", default=None, help="checkpoint file (default: a hidden file in --out)")
    e.add_argument("--out", required=True, help="output folder")
    e.set_defaults(func=cmd_embed)

    g = sub.add_parser("generate", help="sample images from a generator", formatter_class=fmt)
    g.add_argument("--model", default="auto", help="auto | ffhq | mini | mini-v1 | PATH")
    g.add_argument("--seeds", type=_seeds, default="0-7", help="seeds like 0-7,10,12-13")
    g.add_argument("--psi", type=float, default=0.7, help="truncation psi (1 = off, 0 = the average face)")
    g.add_argument("--noise", default="const", choices=["const", "random", "none"], help="per-layer noise")
    g.add_argument("--device", default="auto", help=device_help)
    g.add_argument("--out", required=True, help="output folder")
    g.set_defaults(func=cmd_generate)

    m = sub.add_parser("morph", help="linear interpolation between two embedded images (§4.1)", formatter_class=fmt)
    m.add_argument("a", help="first latent file (X.latent.pt)")
    m.add_argument("b", help="second latent file")
    m.add_argument("--frames", type=_positive, default=8, help="frames from A to B, both included")
    m.add_argument("--model", default=None, help="default: the model recorded in the latent file (a kit name)")
    m.add_argument("--device", default="auto", help=device_help)
    m.add_argument("--out", required=True, help="output folder")
    m.set_defaults(func=cmd_morph)

    a = sub.add_parser("align", help="FFHQ-align the faces in photos (§3.1 preprocessing)", formatter_class=fmt)
    a.add_argument("images", nargs="+", help="photos")
    a.add_argument("--out", required=True, help="output folder")
    a.add_argument("--size", type=_positive, required=True, help="output side in px (1024 for FFHQ, 64 for mini)")
    a.add_argument("--zoom", type=float, default=1.0, help="1.0 = FFHQ framing; 0.7 = the mini model's tighter crop")
    a.set_defaults(func=cmd_align)

    from .cli_edits import add_edit_parsers
    from .cli_folder import add_folder_parser
    from .weights.cli import add_weights_parser

    add_folder_parser(sub)
    add_edit_parsers(sub)
    add_weights_parser(sub)
    t = sub.add_parser("train-encoder", help="train an image -> W+ encoder on a generator's samples (i2s.encoder)",
                       add_help=False)
    t.add_argument("rest", nargs=argparse.REMAINDER)
    t.set_defaults(func=lambda args: __import__("i2s.encoder", fromlist=["main"]).main(args.rest))
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; every expected failure is one line on stderr and an exit code."""
    import warnings

    seen: set[str] = set()

    def one_line(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        text = str(message)
        if text not in seen:  # one warning per cause, no source line
            seen.add(text)
            print(f"[i2s] WARNING: {text}", file=sys.stderr)

    warnings.showwarning = one_line
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # an embedding already saved its checkpoint and said how to resume
        print("[i2s] interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as e:
        print(f"[i2s] {e}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:  # argparse (usage: 2, --help/--version: 0), and messages raised as SystemExit
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            return EXIT_USAGE
        return int(e.code or 0)
    except Exception as e:  # noqa: BLE001 - the kit's own refusals carry a full message
        if os.environ.get("I2S_DEBUG"):
            raise
        from .weights.limits import first_line

        print(f"[i2s] error: {plain_torch_text(first_line(e, 400))} ({type(e).__name__}; set I2S_DEBUG=1 for "
              "the traceback)", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, (ValueError, OSError)) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
