"""Exporting the EMA generator of a run in the kit's ``i2s-stylegan1`` format (``--export``),
the file :func:`i2s.models.load_generator` reads (``data/models/mini-faces64.pt``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..stylegan import StyleGAN, StyleGANConfig
from .schedule import Schedule, parse_schedule
from .files import (CARRY_FORMAT, CHECKPOINT_FORMAT, D_FORMAT, EXPORT_FORMAT, EXPORT_FORMAT_VERSION, atomic_save,
                    fixed_tensors_sha256, load_run_file, plain)

__all__ = ["CARRY_FORMAT", "D_FORMAT", "EXPORT_FORMAT", "EXPORT_FORMAT_VERSION", "export_carry", "export_discriminator",
           "export_from_checkpoint", "export_generator", "kept_snapshots", "average_snapshots"]



def export_generator(G_ema: StyleGAN, path: str | os.PathLike, info: dict, fp16: bool = True) -> Path:
    """Write a generator in the kit's ``i2s-stylegan1`` format (loadable with
    ``torch.load(path, weights_only=True)`` and :func:`i2s.weights.converted.load_converted`):
    ``{"format", "format_version", "config", "state_dict", "info"}``. The state dict holds
    every parameter and buffer (``mapping.w_avg`` = w̄ and the stored ``noise_const``),
    in float16 when ``fp16``. Written to a temp file, then ``os.replace``."""
    sd = {}
    for k, v in G_ema.state_dict().items():
        v = v.detach().to("cpu").clone().contiguous()
        if fp16 and v.is_floating_point():
            v = v.half()
        sd[k] = v
    obj = {"format": EXPORT_FORMAT, "format_version": EXPORT_FORMAT_VERSION, "config": G_ema.cfg.to_dict(),
           "state_dict": sd, "info": plain(info)}
    path = Path(path)
    atomic_save(obj, path)
    return path


W_AVG_SEED = 12345


def kept_snapshots(run: str | os.PathLike, from_kimg: float) -> list[Path]:
    """The run's ``--keep-every`` snapshots (``RUN/snapshots/<k>k.pt``) at ``from_kimg`` or later,
    oldest first."""
    found = []
    for p in Path(run, "snapshots").glob("*k.pt"):
        try:
            k = float(p.name[:-4])
        except ValueError:
            continue
        if k >= from_kimg:
            found.append((k, p))
    return [p for _, p in sorted(found)]


def average_snapshots(paths: list[Path], cfg: StyleGANConfig) -> dict:
    """The uniform mean of exported generators' weights (float32): a weight average over a window
    of training, as SWA (Izmailov et al. 2018) and GAN weight averaging (Yazıcı et al. 2019) take
    it; ``--average-from``. Every file must be an export of this ``cfg``; else one line naming it."""
    total: dict = {}
    for p in paths:
        obj = load_run_file(p)
        if obj.get("format") != EXPORT_FORMAT or obj.get("config") != cfg.to_dict():
            raise ValueError(f"{p}: not a snapshot of this run (another format or network); move it out of "
                             "the snapshots folder or give a later --average-from")
        for k, v in obj["state_dict"].items():
            total[k] = total.get(k, 0) + v.float()
    return {k: v / len(paths) for k, v in total.items()}


def export_from_checkpoint(ckpt_path: str | os.PathLike, out_path: str | os.PathLike, fp16: bool = True,
                           w_std: float | None = None, name: str | None = None,
                           average: list[Path] | None = None) -> Path:
    """Export the EMA generator of a training checkpoint (``--export``). With ``w_std``, W is
    stored at that per-dimension spread (:meth:`~i2s.stylegan.StyleGAN.rescale_w`: the same
    images, another scale of w; ``--w-std``). ``name`` is the name it carries (``G.name``;
    default ``mini-faces64`` at 64 px, ``mini-<res>`` otherwise; ``--name``). With ``average``
    (snapshot files of the run, :func:`kept_snapshots`), the weights are their uniform mean
    (:func:`average_snapshots`) instead of the checkpoint's G_ema; the rest is as above."""
    ckpt = load_run_file(ckpt_path)
    cfg = StyleGANConfig.from_dict(ckpt["config"])
    G = StyleGAN(cfg)
    G.load_state_dict(average_snapshots(average, cfg) if average else ckpt["G_ema"])
    st, args = ckpt["state"], ckpt["args"]
    averaged = ({"averaged": f"uniform mean of {len(average)} snapshots of the run's G_ema, "
                             f"{average[0].name[:-3]} to {average[-1].name[:-3]} images"} if average else {})
    # w̄ of the exported network itself: the tracked w_avg follows the *training* G's mapping
    # (copied into G_ema as v1 does), which lags or leads G_ema's mapping while training moves
    # fast. The embedding starts at w̄ and truncation pulls towards it, so it must be G_ema's own.
    tracked = G.mapping.w_avg.clone()
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.estimate_w_avg(n=100_000, seed=W_AVG_SEED))
    w_avg_note = (f"mean of the exported mapping over 100k z (seed {W_AVG_SEED}); the tracked average was "
                  f"{(tracked - G.mapping.w_avg).norm().item():.3g} away (L2)")  # before any rescale
    rescaled = {}
    if w_std is not None:
        before = G.w_std()
        G.rescale_w(w_std / before)
        rescaled = {"w_std": f"W stored at per-dimension std {G.w_std():.4f} (trained: {before:.4f}; "
                              f"StyleGAN.rescale_w, images unchanged)"}
    phases = parse_schedule(args["schedule"], args.get("fade_frac", 0.5))
    block, alpha, _ = Schedule(phases).at(max(st["images_seen"] - 1, 0))
    info = {
        "name": name or ("mini-faces64" if cfg.resolution == 64 else f"mini-{cfg.resolution}"),
        "tier": "embedded",
        "images_seen": st["images_seen"], "kimg": st["images_seen"] / 1000,
        "wall_clock_hours": st["wall_time"] / 3600,
        "trained_resolution": 4 * 2**block, "trained_alpha": alpha,
        "fully_grown": bool(4 * 2**block == cfg.resolution and alpha >= 1.0),
        "planned_kimg": float(args["total_kimg"]),
        "finished": bool(st["images_seen"] >= int(round(float(args["total_kimg"]) * 1000))),
        "trained_with": ("i2s.train (projected discriminator on ImageNet EfficientNet-Lite0, hinge loss)"
                         if args.get("d_arch") == "projected" else "i2s.train (StyleGAN v1 recipe, progressive growing)"),
        "align_zoom": _data_framing_zoom(args.get("data")),
        "w_avg": w_avg_note,
        **averaged,
        **rescaled,
        "torch": torch.__version__,
        "args": args,
    }
    return export_generator(G, out_path, info, fp16=fp16)


def export_carry(ckpt_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """A run's state small enough to commit (``--export-carry``), so training goes on from it on
    another machine with ``--transfer``: G, G_ema and D's trained heads in float16 (D's fixed
    projections in float32; the frozen feature network comes from its wheel), the training state
    and arguments. Left out: Adam's moments and the RNG states (a carried run is not bit-exact,
    but D does not start afresh, which costs ~5k images of recovery; docs/performance.md).
    ``{"format": "i2s-train-carry", "format_version", "config", "G", "D", "G_ema", "state", "args"}``."""
    ckpt = load_run_file(ckpt_path)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{ckpt_path}: not an i2s training checkpoint")

    def half(sd: dict, keep: str | None = None) -> dict:  # float tensors to float16, except names under `keep`
        return {k: (v.half() if v.is_floating_point() and not (keep and k.startswith(keep)) else v).contiguous()
                for k, v in sd.items()}

    # D's fixed random projections stay float32 (a fresh D of the same seed has them exactly)
    obj = {"format": CARRY_FORMAT, "format_version": 1, "config": ckpt["config"],
           "G": half(ckpt["G"]), "G_ema": half(ckpt["G_ema"]), "D": half(ckpt["D"], keep="proj."),
           "state": ckpt["state"], "args": ckpt["args"],
           **({"D_pixel": half(ckpt["D_pixel"])} if "D_pixel" in ckpt else {})}
    path = Path(out_path)
    atomic_save(obj, path)
    return path


def export_discriminator(ckpt_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """D's trained part of a run (``--export-d``), to commit beside the generator exported from the
    same checkpoint: a run on another machine then goes on with D kept (``--transfer GEN
    --transfer-d THIS``), as a resume does, instead of afresh (whether that matters for mini v3
    is being measured: data/models/mini-faces64.md, fifth session). D's trainable tensors in float16; its fixed
    random projections (``proj.``) are left out, since a D built with the same arguments draws
    them again, and their sha256 is stored so that a D that drew others is refused.
    ``{"format": "i2s-train-d", "format_version", "D", "proj_sha256", "state", "args"}``."""
    ckpt = load_run_file(ckpt_path)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{ckpt_path}: not an i2s training checkpoint")
    keep = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in ckpt["D"].items()
            if not k.startswith("proj.")}
    obj = {"format": D_FORMAT, "format_version": 1, "D": keep, "proj_sha256": fixed_tensors_sha256(ckpt["D"]),
           "state": ckpt["state"], "args": ckpt["args"],
           **({"D_pixel": {k: v.half() if v.is_floating_point() else v for k, v in ckpt["D_pixel"].items()}}
              if "D_pixel" in ckpt else {})}
    path = Path(out_path)
    atomic_save(obj, path)
    return path


def _data_framing_zoom(data: str | None, default: float = 0.7) -> float:
    """The FFHQ-recipe zoom the training faces were aligned with (from ``<data>-meta.json``,
    written by scripts/prepare_mini_data.py); embedding a face into the model must use the same."""
    if data:
        meta = Path(data).with_name(Path(data).stem + "-meta.json")
        try:
            return float(json.loads(meta.read_text())["framing"]["zoom"])
        except (OSError, KeyError, ValueError, TypeError):
            pass
    return default
