"""``i2s embed-folder DIR --out OUT [--workers N] [--address auto | ray://HOST:PORT]``: every photo
of a folder embedded with Algorithm 1 on Ray workers (:mod:`i2s.folder`), with the options of
``i2s embed``. torch and Ray are imported only once the command runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_common import (EXIT_NO_INPUT, EXIT_OK, EXIT_PARTIAL, EXIT_REFUSED, UsageError, at_least, check_writable,
                         resolve_device)


def add_folder_parser(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    f = sub.add_parser(
        "embed-folder", help="embed every photo of a folder on Ray workers (local by default)", formatter_class=fmt,
        description="Embed the photos of a folder and its sub-folders (Algorithm 1) on Ray workers: a local Ray "
                    "session started for the run, or an existing cluster (--address). Writes, mirroring the folder, "
                    "NAME.latent.pt, NAME.png, NAME-target.png, and embeddings.csv (a row per photo: its status, "
                    "metrics, latent file, model tier, and the worker and device that made it). Results go through "
                    "the embedding cache: a rerun, or a run resumed after a killed worker, recomputes nothing "
                    "that finished.")
    f.add_argument("folder", help="folder of photos (JPEG, PNG, WebP, ...; searched recursively)")
    f.add_argument("--out", required=True, help="output folder")
    f.add_argument("--workers", type=at_least(1), default=None,
                   help="Ray workers, one CPU (and one GPU where there are GPUs) each; default: one per GPU, "
                        "1 without GPUs")
    f.add_argument("--address", default=None,
                   help="an existing Ray cluster: auto (the one `ray start --head` started here) or "
                        "ray://HOST:10001; default: a local session for this run")
    f.add_argument("--model", default="auto", help="auto | ffhq | mini | random-ffhq | random-mini | PATH "
                                                   "(each worker loads it by this name or path)")
    f.add_argument("--space", default="w+", choices=["w+", "w", "z"], help="latent space (§3.3)")
    f.add_argument("--init", default="mean", choices=["mean", "uniform", "normal", "encoder"],
                   help="initial latent (§5.1): mean = w̄")
    f.add_argument("--steps", type=at_least(0), default=None,
                   help="Adam steps; default 5000 (the paper's), 1250 with --schedule fast")
    f.add_argument("--schedule", default="paper", choices=["paper", "fast"], help="as for i2s embed")
    f.add_argument("--loss", default="full", choices=["full", "mse", "conv3_2", "mse+conv3_2", "perceptual"],
                   help="the loss of Eq. 1 or an ablation of Fig. 9")
    f.add_argument("--no-resize", action="store_true", help="perceptual loss at full resolution (Fig. 12)")
    f.add_argument("--perceptual", default="auto",
                   help="perceptual network: auto | random | efficientnet-lite0 | PATH to vgg16-397923af.pth")
    f.add_argument("--align", action="store_true", help="FFHQ-align faces first (dlib); otherwise centre-crop")
    f.add_argument("--batch", type=at_least(1), default=8, help="photos optimised together on a worker")
    f.add_argument("--seed", type=int, default=0, help="seed of the uniform/normal initial latent")
    f.add_argument("--device", default="auto", help="auto (each worker's GPU when it has one) or cpu")
    f.add_argument("--checkpoint-every", type=at_least(0), default=250,
                   help="each batch saves a resumable checkpoint every N steps (0: none)")
    f.add_argument("--cache-dir", default=None,
                   help="the embedding cache (default $I2S_CACHE_DIR or ~/.cache/i2s/embeddings; on a cluster: "
                        "a folder every node sees at this path)")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_embed_folder)


def cmd_embed_folder(args: argparse.Namespace) -> int:
    from . import cache
    from .folder import FolderJob, WorkerLoadError, embed_folder
    from .loss import PERCEPTUAL_NETS
    from .models import MODEL_NAMES, ffhq_available, short_name

    folder, out = Path(args.folder), Path(args.out)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder; give the folder that holds the photos")
    if args.device not in ("auto", "cpu"):
        resolve_device(args.device)  # cuda without a GPU here is a usage error; workers choose their own GPU
        args.device = "auto"
    check_writable(out)
    named = ("auto", *PERCEPTUAL_NETS, *PERCEPTUAL_NETS.values())
    if args.perceptual not in named and not Path(args.perceptual).is_file():
        raise UsageError(f"--perceptual {args.perceptual}: no such file; give auto, random, efficientnet-lite0 or the "
                         "path of vgg16-397923af.pth (i2s weights fetch vgg16-imagenet)")
    model = args.model
    if model == "auto":  # decided once, here, so every worker loads the same generator
        model = "ffhq" if ffhq_available() else "mini"
        print(f"[i2s] model=auto -> {model}")
    if Path(model).is_file():
        model = str(Path(model).resolve())  # a path the workers can open
    elif short_name(model) not in MODEL_NAMES and ("/" in model or Path(model).suffix in (".pt", ".pkl")):
        raise UsageError(f"--model {model}: no such file; give a generator file or a name ({', '.join(MODEL_NAMES)})")
    perceptual = str(Path(args.perceptual).resolve()) if Path(args.perceptual).is_file() else args.perceptual
    job = FolderJob(model=model, perceptual=perceptual, loss=args.loss, resize=None if args.no_resize else 256,
                    space=args.space, init=args.init, steps=args.steps, schedule=args.schedule, seed=args.seed,
                    align=args.align, device=args.device,
                    cache_dir=str(Path(args.cache_dir or cache.default_cache_dir()).expanduser().resolve()),
                    checkpoint_dir=str((out / ".i2s-checkpoints").resolve()) if args.checkpoint_every else None,
                    checkpoint_every=args.checkpoint_every)
    try:
        run = embed_folder(folder, out, job, workers=args.workers, address=args.address, batch=args.batch,
                           progress=not args.no_progress)
    except WorkerLoadError as e:
        print(f"[i2s] {e}", file=sys.stderr)
        return EXIT_REFUSED
    except ValueError as e:  # no image in the folder
        print(f"[i2s] {e}", file=sys.stderr)
        return EXIT_NO_INPUT
    for r in run.failures:
        print(f"[i2s] failed {r['path']}: {r['error']}", file=sys.stderr)
    print(f"[i2s] {run.photos} photos: {run.embedded} embedded, {run.cached} from the cache, {run.failed} failed, "
          f"in {run.seconds:.1f} s; table {run.table}")
    if run.failed == run.photos:
        return EXIT_NO_INPUT
    return EXIT_PARTIAL if run.failed else EXIT_OK
