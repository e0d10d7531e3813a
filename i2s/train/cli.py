"""The command line of ``python -m i2s.train``: train, resume, transfer, export or bench.

``main(argv)`` parses the options; on ``--resume`` the checkpoint's arguments win over the
defaults, options given on the command line win over the checkpoint, and the options that
define the networks (``_FIXED_ON_RESUME``) may not change.
"""

from __future__ import annotations

import argparse
import importlib
import math
import re
from pathlib import Path
from typing import Sequence

import torch

from .. import precision as _precision
from .bench import bench
from .export import export_carry, export_discriminator, export_from_checkpoint, kept_snapshots
from ..runtime import resolve_device
from .trainer import Trainer, load_run_file

__all__ = ["build_parser", "main", "parse_args"]


def _description() -> str:
    """The first paragraph of the package docstring (the recipe lives in ``i2s/train/__init__.py``)."""
    doc = importlib.import_module(__package__).__doc__ or ""
    return doc.split("\n\n")[0]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m i2s.train", description=_description(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", help="packed uint8 array [N, H, W, 3] (.npy)")
    p.add_argument("--out", help="run directory: checkpoint.pt, samples-*.png, log.jsonl")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue from OUT/checkpoint.pt (or the given checkpoint) exactly")
    p.add_argument("--transfer", metavar="CKPT", help="start a new run from CKPT (a checkpoint, or an exported generator: then D starts fresh) although the networks differ: "
                   "tensors of matching shape are copied, the rest start fresh, the schedule goes on from CKPT's images")
    p.add_argument("--export", metavar="PATH", help="export the EMA generator of the checkpoint and exit")
    p.add_argument("--pack", metavar="ZIP", help="write --data as one zip of JPEGs (q90; 55 MiB for the 28k "
                   "64-px faces: fits the 64 MiB a GPU machine receives) and exit; --data accepts the zip")
    p.add_argument("--export-carry", metavar="PATH", help="write the checkpoint's G, G_ema and D (float16) with the "
                   "training state, small enough to commit, and exit; --transfer PATH goes on from it with D kept")
    p.add_argument("--export-d", metavar="PATH", help="write the checkpoint's D (its trained tensors, float16; "
                   "~3.8 MB for mini v3) with the training state and exit: committed beside the generator exported "
                   "from the same checkpoint, --transfer GEN --transfer-d PATH goes on from both with D kept")
    p.add_argument("--d-warmup-kimg", type=float, default=0.0, metavar="K",
                   help="with --transfer: train D alone on the transferred G's fakes for K kimg before G moves "
                        "(a fresh D's first steps otherwise push a trained G off; the image count waits)")
    p.add_argument("--transfer-d", metavar="PATH", help="with --transfer of an exported generator: D from this "
                   "--export-d file instead of afresh")
    p.add_argument("--no-fp16", dest="fp16", action="store_false", help="export in float32")
    p.add_argument("--w-std", type=float, metavar="STD",
                   help="with --export: store W at this per-dimension std (same images; Algorithm 1's lr "
                        "then moves w as far per step as on a generator of that spread; v1 mini: 0.378)")
    p.add_argument("--average-from", type=float, metavar="KIMG",
                   help="with --export: the uniform mean of the run's kept snapshots (--keep-every) from KIMG on "
                        "instead of the checkpoint's G_ema (a weight average over that stretch of training)")
    p.add_argument("--name", help="with --export: the name the generator carries (G.name, latent and encoder "
                                  "files; default mini-faces64 at 64 px; mini v3 ships as mini-faces64-v3)")
    p.add_argument("--bench", action="store_true", help="measure images/s per resolution and exit")
    p.add_argument("--bench-iters", type=int, default=4)
    # model
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--fmap-base", type=int, default=1024)
    p.add_argument("--fmap-max", type=int, default=128)
    p.add_argument("--mbstd-group", type=int, default=4)
    p.add_argument("--d-arch", choices=("stylegan", "projected"), default="stylegan",
                   help="stylegan: v1's D_basic with the logistic loss and R1 (mini v1's recipe); projected: "
                        "heads on frozen ImageNet EfficientNet-Lite0 features with the hinge loss (Projected GAN, mini v2)")
    p.add_argument("--proj-res", type=int, default=128,
                   help="projected D: input size of the feature network (a multiple of 32, or one more: 97 pads "
                        "every edge alike)")
    p.add_argument("--no-csm", dest="csm", action="store_false", help="projected D: cross-channel mixing only")
    p.add_argument("--proj-mbstd", type=int, default=0, metavar="GROUP",
                   help="projected D: v1's minibatch-stddev feature in every head over groups of GROUP samples "
                        "(0: none; a signal against drawing too few kinds of faces)")
    p.add_argument("--d-width", type=float, default=1.0,
                   help="projected D: width of the mixed features and heads (0.5: a quarter of the heads' multiply-adds)")
    p.add_argument("--d-flip", action="store_true",
                   help="projected D: view every image (real and fake) through random left-right/upside-down flips, "
                        "so no corner of G's output escapes D (see i2s.train.trainer.random_flips)")
    p.add_argument("--d-flip-v", type=float, default=0.2, metavar="P",
                   help="--d-flip: probability of an upside-down flip (1/2 leaks: G may then draw faces upside down)")
    p.add_argument("--range-penalty", type=float, default=0.0, metavar="WEIGHT",
                   help="add WEIGHT * mean relu(|x| - 1)^2 of G's images to its loss: keeps pixels in [-1, 1], where "
                        "the projected D's frozen features still see them (v3 run 1's black blob was at -53)")
    p.add_argument("--d-pixel", type=float, default=0.0, metavar="WEIGHT",
                   help="projected D: also train a small StyleGAN D on the pixels (logistic loss, R1) and add WEIGHT "
                        "times its G loss: it sees what the frozen features are blind to (mini v3 run 1's black blob)")
    p.add_argument("--d-pixel-fmap", type=int, default=512, help="--d-pixel: fmap_base of the pixel D")
    p.add_argument("--d-down", choices=("pool", "stride"), default="stride",
                   help="D down-sampling: v1's blur-conv-avgpool, or blur + stride-2 conv (4x fewer MACs)")
    # schedule
    p.add_argument("--schedule", default="8:40k,16:60k,32:80k,64:rest",
                   help="RES:IMAGES[/FADE] per phase; each phase after the first starts with a fade-in")
    p.add_argument("--fade-frac", type=float, default=0.5, help="fade-in share of a phase when /FADE is not given")
    p.add_argument("--total-kimg", type=float, default=400.0)
    p.add_argument("--batch", default="4:64,8:64,16:64,32:32,64:32", help="RES:BATCH list, or one number")
    # optimisation
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--beta1", type=float, default=0.0)
    p.add_argument("--beta2", type=float, default=0.99)
    p.add_argument("--no-reset-opt", dest="reset_opt", action="store_false",
                   help="keep Adam's moments across phases (v1 resets them)")
    p.add_argument("--r1-gamma", type=float, default=1.0)
    p.add_argument("--r1-interval", type=int, default=4)
    p.add_argument("--style-mixing", type=float, default=0.9)
    p.add_argument("--locality", type=float, default=0.0,
                   help="weight of the layer-locality penalty (i2s.train.trainer.locality_loss): swapping the "
                        "64-px rows of W+ must not move the 16-px layout, swapping the middle rows not the 8-px one")
    p.add_argument("--locality-interval", type=int, default=4, help="G steps between locality penalties (lazy, scaled up)")
    p.add_argument("--ema-kimg", type=float, default=10.0, help="half-life of G_ema in kimg")
    p.add_argument("--ema-rampup", type=float, default=0.05, help="0 disables the ramp-up")
    p.add_argument("--augment", choices=("none", "diffaug"), default="diffaug")
    p.add_argument("--diffaug-policy", default="color,translation,cutout",
                   help="the DiffAugment operations D's inputs go through (comma list of color, translation, cutout)")
    p.add_argument("--one-g-pass", action="store_true",
                   help="render the fakes once per iteration: the D step sees the G step's fakes (detached), "
                        "saving one generator forward pass")
    p.add_argument("--no-xflip", dest="xflip", action="store_false")
    # bookkeeping
    p.add_argument("--ckpt-every", type=float, default=5.0, help="kimg")
    p.add_argument("--sample-every", type=float, default=5.0, help="kimg")
    p.add_argument("--keep-every", type=float, default=0.0,
                   help="kimg: at the first checkpoint past every multiple, also export G_ema to "
                        "OUT/snapshots/<k>k.pt (float16, ~8 MB for mini), so a run that goes wrong can be "
                        "measured along the way and rolled back (--transfer); 0: off")
    p.add_argument("--log-every", type=float, default=1.0, help="kimg")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--precision", choices=("auto", "float32", "bf16"), default="auto",
                   help="auto: bf16 autocast where the CPU/GPU runs bf16 natively (i2s.precision), else float32")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop after this many minutes of this invocation, with a checkpoint and a sample grid")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile G's synthesis network (about a minute of compiling per start; 1.4x faster "
                        "G on a CPU; D is left alone: compiled, the projected D ran slower)")
    p.add_argument("--d-precision", choices=("same", "float32"), default="same",
                   help="float32: D runs in float32 (in channels-last memory order) whatever --precision G runs in; "
                        "on AVX-512 bf16 CPUs the projected D's depthwise convolutions are faster so")
    p.add_argument("--no-progress", action="store_true")
    return p


# Arguments that define the networks and cannot change on resume.
_FIXED_ON_RESUME = ("resolution", "fmap_base", "fmap_max", "mbstd_group", "d_down", "d_arch", "proj_res", "csm", "d_width", "proj_mbstd")
# Arguments that only steer this invocation and are never taken from a checkpoint.
_PER_RUN = ("resume", "transfer", "transfer_d", "d_warmup_kimg", "average_from", "export", "export_carry", "export_d", "pack", "fp16", "w_std", "name", "bench", "bench_iters", "out", "threads", "device", "no_progress",
            "minutes", "compile")
# d_precision and one_g_pass may change on resume: they change the arithmetic, not the networks


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _explicit_args(argv: Sequence[str] | None) -> set[str]:
    """Names of the options given on the command line (to override a checkpoint's args)."""
    p = build_parser()
    for a in p._actions:
        a.default = argparse.SUPPRESS
    return set(vars(p.parse_args(argv)))


def _checkpoint_path(args: argparse.Namespace) -> Path:
    if args.resume not in (None, "auto"):
        return Path(args.resume)
    if not args.out:
        raise SystemExit("--out (or --resume PATH) is required")
    path = Path(args.out) / "checkpoint.pt"
    if not path.exists() and (Path(args.out) / "checkpoint-prev.pt").exists():
        path = Path(args.out) / "checkpoint-prev.pt"
    return path


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except (FileNotFoundError, ValueError) as e:  # a missing, damaged or foreign file: one line naming it
        raise SystemExit(f"[i2s.train] {e}") from None


def _main(argv: Sequence[str] | None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.pack:
        from .data import open_dataset, pack_dataset

        path = pack_dataset(open_dataset(args.data), args.pack)
        print(f"[i2s.train] packed {args.data} -> {path} ({path.stat().st_size / 2**20:.1f} MiB)")
        return 0
    if args.w_std is not None and not (args.export and args.w_std > 0 and math.isfinite(args.w_std)):
        raise SystemExit(f"--w-std {args.w_std}: give a positive spread, together with --export")
    if args.name is not None and not (args.export and re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", args.name)):
        raise SystemExit(f"--name {args.name!r}: give, together with --export, a name of lower-case letters, "
                         "digits, '.', '_' and '-' (as mini-faces64-v3)")
    average = None
    if args.average_from is not None:
        if not args.export:
            raise SystemExit("--average-from goes with --export")
        run = _checkpoint_path(args).parent
        average = kept_snapshots(run, args.average_from)
        if len(average) < 2:
            raise SystemExit(f"--average-from {args.average_from:g}: {len(average)} kept snapshot(s) of "
                             f"{run} from there on; give an earlier KIMG")
        print(f"[i2s.train] averaging {len(average)} snapshots: {', '.join(p.name[:-3] for p in average)}")
    writers = ((args.export, lambda ckpt, out: export_from_checkpoint(ckpt, out, fp16=args.fp16, w_std=args.w_std,
                                                                       name=args.name, average=average),
                "exported the EMA generator of {ckpt} -> {path} ({mb:.1f} MB)"),
               (args.export_carry, export_carry, "carried the state of {ckpt} -> {path} ({mb:.1f} MB; go on with "
                                                 "--transfer {path})"),
               (args.export_d, export_discriminator, "wrote D of {ckpt} -> {path} ({mb:.1f} MB; go on with --transfer "
                                                     "GEN --transfer-d {path}, GEN exported from the same checkpoint)"))
    for out, write, said in writers:  # --export, --export-carry, --export-d: write one file and exit
        if out:
            ckpt = _checkpoint_path(args)
            path = write(ckpt, out)
            print("[i2s.train] " + said.format(ckpt=ckpt, path=path, mb=path.stat().st_size / 1e6))
            return 0
    if args.transfer_d and not args.transfer:
        raise SystemExit("--transfer-d needs --transfer (the generator exported from the same checkpoint)")
    if args.bench:
        if not args.threads:
            torch.set_num_threads(2)
        print(f"[i2s.train] bench: {torch.get_num_threads()} threads, device {resolve_device(args.device)}")
        bench(args, args.bench_iters)
        return 0
    if not args.out:
        raise SystemExit("--out is required")

    if args.resume:
        ckpt_path = _checkpoint_path(args)
        ckpt = load_run_file(ckpt_path)
        saved = dict(ckpt["args"])
        given = _explicit_args(argv)
        for k in _FIXED_ON_RESUME:
            if k in given and getattr(args, k) != saved.get(k):
                raise SystemExit(f"--{k.replace('_', '-')} cannot change on resume ({saved.get(k)} in the checkpoint)")
        merged = {**vars(args), **{k: v for k, v in saved.items() if k not in given and k not in _PER_RUN}}
        args = argparse.Namespace(**merged)
        if not args.data:
            raise SystemExit("--data is required")
        trainer = Trainer(args)
        trainer.load_checkpoint(ckpt)
        print(f"[i2s.train] resumed {ckpt_path} at {trainer.state.images_seen / 1000:.1f} kimg")
    else:
        if not args.data:
            raise SystemExit("--data is required")
        if (Path(args.out) / "checkpoint.pt").exists():
            raise SystemExit(f"{args.out}/checkpoint.pt exists: pass --resume to continue it, or another --out")
        trainer = Trainer(args)
        if args.transfer:
            old = load_run_file(args.transfer)
            copied, fresh = trainer.transfer_from(old)
            print(f"[i2s.train] transferred {copied} tensors from {args.transfer} ({fresh} start fresh); "
                  f"going on at {trainer.state.images_seen / 1000:.1f} kimg")
            if args.transfer_d:
                try:
                    taken = trainer.transfer_discriminator(load_run_file(args.transfer_d), str(args.transfer_d))
                except ValueError as e:
                    raise SystemExit(str(e)) from None
                print(f"[i2s.train] D: {taken} tensors from {args.transfer_d} (its fixed projections drawn again, "
                      "checked by sha256)")
        if args.d_warmup_kimg:
            if not args.transfer or not (math.isfinite(args.d_warmup_kimg) and args.d_warmup_kimg > 0):
                raise SystemExit(f"--d-warmup-kimg {args.d_warmup_kimg}: give a positive count, together with --transfer")
            trainer.state.d_warmup_left = int(round(args.d_warmup_kimg * 1000))
            print(f"[i2s.train] D trains alone for {args.d_warmup_kimg:g} kimg before G moves")
        nG = sum(p.numel() for p in trainer.G.parameters())
        nD = sum(p.numel() for p in trainer.D.parameters())
        print(f"[i2s.train] G {nG / 1e6:.2f} M params, D {nD / 1e6:.2f} M; {len(trainer.data)} images; "
              f"{_precision.describe(trainer.precision, trainer.device)}, {torch.get_num_threads()} threads")
    st = trainer.train()
    print(f"[i2s.train] stopped at {st.images_seen / 1000:.1f} kimg ({st.wall_time / 3600:.2f} h of training)")
    return 0
