"""Quality report of the mini model (issue: the embedded default). Prints and writes:

1. the sample grid: 64 samples at truncation 0.7 and 1.0 -> figures/mini/samples.png;
2. embedding quality: W+ embeddings (paper loss, w̄ init, --steps Adam steps) of the held-out
   training-set faces (never trained on) and of the evaluation set (faces, cats, dogs, cars,
   paintings): PSNR, SSIM and the paper's loss L, per class;
3. the paper's clustering observation on our model: mean ||w* - w̄|| of faces vs each non-face class;
4. speed: embedding steps per second on this machine, batch 1 and batch 8.

The numbers go to results/mini/report/ (per-image CSV, summary.json) and into the model card
data/models/mini-faces64.md between its report markers.

    python scripts/mini_report.py [--steps 1000] [--holdout-n 200] [--batch 8]

A candidate generator against the shipped one, paired image by image (the same photos, steps and
loss), without touching the committed card or figures:

    python scripts/mini_report.py --model mini --holdout-n 16 --no-card --figures /tmp/v1 --out /tmp/v1
    python scripts/mini_report.py --model CANDIDATE.pt --holdout-n 16 --no-card --figures /tmp/v3 \
        --out /tmp/v3 --against /tmp/v1/per_image.csv

``--against`` prints, per group, the mean PSNR difference (this run minus the other) with its 95 %
bootstrap interval over images (:func:`i2s.stats.paired_comparison`) and how many images gained.

Embeddings go through the i2s embedding cache ($I2S_HOME/embeddings), batch by batch: on a CPU the
full report takes hours (about 225 images x 1000 steps), and an interrupted run picks up where it
stopped when started again. The held-out faces' rows also go, batch by batch, to
OUT/holdout-progress.csv, tagged with the generator's weights, the steps and the perceptual network:
committed, it carries an unfinished report to a machine without the cache (the rows it holds are
taken as they are, the rest embedded).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import platform
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from i2s import embed, load_generator
from i2s.models import weights_hash
from i2s.runner import cached_embed
from i2s.data import CLASSES, holdout_faces, load_class_batch
from i2s.io import atomic_write_text, image_grid, save_png, tensor_to_pil, write_csv
from i2s.loss import EmbeddingLoss
from i2s.metrics import psnr, ssim
from i2s.stats import paired_comparison

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "data" / "models" / "mini-faces64.md"
START, END = "<!-- report:start -->", "<!-- report:end -->"


def sample_grid(G, out: Path) -> None:
    """64 samples (seeds 0-63) at psi 0.7 (left) and 1.0 (right)."""
    panels = []
    for psi in (0.7, 1.0):
        z = torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(0)).to(G.device)
        with torch.no_grad():
            imgs = G(z, truncation_psi=psi).cpu()
        panels.append(tensor_to_pil(image_grid(imgs, cols=8)))
    w, h = panels[0].size
    canvas = Image.new("RGB", (2 * w + 16, h + 24), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (panel, psi) in enumerate(zip(panels, (0.7, 1.0))):
        canvas.paste(panel, (k * (w + 16), 24))
        draw.text((k * (w + 16) + 4, 4), f"truncation psi = {psi}", fill="black")
    save_png(canvas, out)


def embed_group(G, images: torch.Tensor, loss_fn, steps: int, batch: int, label: str) -> dict[str, torch.Tensor]:
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("loss", "dist", "psnr", "ssim", "recon")}
    # Through the embedding cache, one batch at a time: an interrupted report (hours on a CPU)
    # resumes where it stopped, and only the batches not yet embedded are computed again.
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        res = cached_embed(G, x.to(G.device), steps=steps, loss_fn=loss_fn, batch_size=batch,
                           desc=f"{label} {i // batch + 1}/{-(-len(images) // batch)}")
        out["loss"].append(res.loss)
        out["dist"].append(res.dist_to_w_avg)
        out["psnr"].append(psnr(res.images, x))
        out["ssim"].append(ssim(res.images, x))
        out["recon"].append(res.images)
    return {k: torch.cat(v) for k, v in out.items()}


PROGRESS = "holdout-progress.csv"  # in --out: the held-out faces' rows so far


def face_rows(names: list[str], r: dict[str, torch.Tensor], label: str = "holdout faces") -> list[dict]:
    return [{"group": label, "image": name, "psnr_db": f"{r['psnr'][k]:.3f}", "ssim": f"{r['ssim'][k]:.4f}",
             "loss": f"{r['loss'][k]:.6g}", "dist_to_w_avg": f"{r['dist'][k]:.4f}"} for k, name in enumerate(names)]


def embed_holdout(G, images: torch.Tensor, names: list[str], loss_fn, steps: int, batch: int,
                  progress: Path) -> list[dict]:
    """The held-out faces batch by batch, each batch's rows written to ``progress`` (a CSV) as soon
    as it is embedded. Rows already there with this generator's weights, these steps, this
    perceptual network and the same pixels are taken as they are (a whole batch or not at all, so
    every embedding ran in the batch it would run in now): committed, the file carries a report
    of hours to another machine. A damaged file is set aside in one line, not trusted."""
    tag = {"weights": weights_hash(G)[:16], "steps": str(steps), "perceptual_net": loss_fn.perceptual_net}
    kept: list[dict] = []
    if progress.is_file():
        try:
            with open(progress, newline="") as f:
                kept = list(csv.DictReader(f))
            for r in kept:  # every row must carry its numbers
                float(r["psnr_db"]), float(r["ssim"]), float(r["loss"]), float(r["dist_to_w_avg"])
        except (OSError, KeyError, ValueError, TypeError, csv.Error) as e:
            print(f"[report] {progress}: not a progress file of this script ({type(e).__name__}); embedding afresh")
            kept = []
    done = {r["pixels"]: r for r in kept if all(r.get(k) == v for k, v in tag.items())}
    pixels = [hashlib.sha256((img.clamp(-1, 1) * 127.5 + 127.5).round().to(torch.uint8).numpy().tobytes())
              .hexdigest()[:16] for img in images.cpu()]
    rows: list[dict] = []
    nb = -(-len(images) // batch)
    for i in range(0, len(images), batch):
        keys = pixels[i:i + batch]
        if all(k in done for k in keys):
            rows += [{**done[k], "image": names[i + j]} for j, k in enumerate(keys)]
            continue
        r = embed_group(G, images[i:i + batch], loss_fn, steps, batch, f"holdout faces {i // batch + 1}/{nb}")
        rows += [{**row, **tag, "pixels": k} for row, k in zip(face_rows(names[i:i + batch], r), keys)]
        ours = set(pixels[:i + batch])
        others = [r for r in kept if not (r.get("pixels") in ours and all(r.get(k) == v for k, v in tag.items()))]
        write_csv(progress, others + rows)  # other generators' or settings' rows stay
    print(f"[report] holdout faces: {sum(k in done for k in pixels)} of {len(images)} taken from {progress}")
    return rows


def speed(G, loss_fn, batch: int, steps: int = 10) -> float:
    with torch.no_grad():
        x = G(torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(1)).to(G.device)).clamp(-1, 1)
    embed(G, x, steps=2, loss_fn=loss_fn, progress=False)
    t = time.perf_counter()
    embed(G, x, steps=steps, loss_fn=loss_fn, progress=False)
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mini")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--holdout-n", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "i2s" / "train-data")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "mini" / "report")
    ap.add_argument("--no-card", action="store_true", help="do not update the model card")
    ap.add_argument("--figures", type=Path, default=REPO / "figures" / "mini",
                    help="where the sample grid and the embedding pairs go (default: the committed figures/mini)")
    ap.add_argument("--against", type=Path, help="another run's per_image.csv: paired PSNR differences per group")
    ap.add_argument("--holdout-only", action="store_true",
                    help="only the held-out faces (no evaluation set, no card): a quick check of a candidate")
    args = ap.parse_args()
    other = read_per_image(args.against) if args.against else None

    G = load_generator(args.model, device=args.device)
    zoom = float(G.info.get("align_zoom", 0.7))
    loss_fn = EmbeddingLoss()
    print(f"[report] perceptual network: {loss_fn.perceptual_net}; {args.steps} steps; framing zoom {zoom}")
    fig_dir = args.figures
    sample_grid(G, fig_dir / "samples.png")
    print(f"[report] wrote {fig_dir / 'samples.png'}")

    groups: dict[str, tuple[list[str], torch.Tensor]] = {}
    hold = holdout_faces(args.holdout_n, G.resolution, zoom, args.cache, args.shared / "data" / "faces" / "images")
    groups["holdout faces"] = ([f"holdout/{i:03d}" for i in range(len(hold))], hold)
    for cls in () if args.holdout_only else CLASSES:
        groups[cls] = load_class_batch(cls, G.resolution, zoom=zoom)

    args.out.mkdir(parents=True, exist_ok=True)
    rows, summary = [], {}
    for label, (names, imgs) in groups.items():
        if label == "holdout faces":
            mine = [{k: r[k] for k in ("group", "image", "psnr_db", "ssim", "loss", "dist_to_w_avg")}
                    for r in embed_holdout(G, imgs, names, loss_fn, args.steps, args.batch, args.out / PROGRESS)]
            r = {k: torch.tensor([float(row[c]) for row in mine]) for k, c in
                 (("psnr", "psnr_db"), ("ssim", "ssim"), ("loss", "loss"), ("dist", "dist_to_w_avg"))}
        else:
            r = embed_group(G, imgs, loss_fn, args.steps, args.batch, label)
            mine = face_rows(names, r, label)
        summary[label] = {"n": len(names), "psnr_db": r["psnr"].mean().item(), "ssim": r["ssim"].mean().item(),
                          "loss_x1e5": r["loss"].mean().item() / 1e5, "dist_to_w_avg": r["dist"].mean().item()}
        rows += mine
        if label != "holdout faces":
            pairs = torch.stack([imgs, r["recon"]], 1).flatten(0, 1)
            save_png(image_grid(pairs, cols=2 * len(names)), fig_dir / f"embed-{label}.png")
        print(f"[report] {label:<14} n={len(names):<4} PSNR {summary[label]['psnr_db']:.2f} dB  SSIM "
              f"{summary[label]['ssim']:.3f}  L {summary[label]['loss_x1e5']:.4f}e5  |w*-w̄| {summary[label]['dist_to_w_avg']:.2f}")

    sp1, sp8 = speed(G, loss_fn, 1), speed(G, loss_fn, 8)
    cpu = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads" if args.device == "cpu" else torch.cuda.get_device_name()
    result = {"model": G.name, "model_info": {k: v for k, v in G.info.items() if isinstance(v, (str, int, float, bool))},
              "perceptual_net": loss_fn.perceptual_net, "steps": args.steps, "groups": summary,
              "speed": {"device": cpu, "batch1_s_per_step": sp1, "batch8_s_per_step": sp8,
                        "batch8_ms_per_image_step": sp8 / 8 * 1000}}
    if other is not None:
        result["against"] = {"file": str(args.against), "groups": against(rows, other)}
        for label, c in result["against"]["groups"].items():
            print(f"[report] {label:<14} PSNR minus {args.against}: {c['effect']:+.2f} dB "
                  f"[{c['low']:+.2f}, {c['high']:+.2f}] over {c['n_images']} images, {c['wins']} gained")
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "per_image.csv", rows)
    atomic_write_text(args.out / "summary.json", json.dumps(result, indent=2))
    if args.holdout_only:  # the card's table needs every class
        return
    md = render(result)
    print(md)
    if not args.no_card and CARD.is_file():
        text = CARD.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            atomic_write_text(CARD, head + START + "\n" + md + "\n" + END + tail)
            print(f"[report] updated {CARD}")


def read_per_image(path: Path) -> dict[tuple[str, str], float]:
    """(group, image) -> PSNR of a report's ``per_image.csv``; a file that is not one is refused
    in one line naming it."""
    import csv

    try:
        with open(path, newline="") as f:
            table = {(r["group"], r["image"]): float(r["psnr_db"]) for r in csv.DictReader(f)}
    except (OSError, KeyError, ValueError, TypeError, csv.Error) as e:
        raise SystemExit(f"[report] {path}: not a report's per_image.csv ({type(e).__name__}: {e}); "
                         "give the per_image.csv another run of this script wrote")
    if not table:
        raise SystemExit(f"[report] {path}: a per_image.csv without a single image; give the per_image.csv "
                         "of a run that finished")
    return table


def against(rows: list[dict], other: dict[tuple[str, str], float]) -> dict[str, dict]:
    """Per group, this run's PSNR minus the other run's on the images both embedded: the mean
    difference, its 95 % bootstrap interval over images and how many images gained. Groups with
    no image in common are left out."""
    out = {}
    for label in dict.fromkeys(r["group"] for r in rows):
        pairs = [(float(r["psnr_db"]), other[(label, r["image"])]) for r in rows
                 if r["group"] == label and (label, r["image"]) in other]
        if pairs:
            a, b = zip(*pairs)
            c = paired_comparison(a, b, "greater")
            out[label] = {"n_images": c.n_images, "effect": c.effect, "low": c.low, "high": c.high, "wins": c.wins}
    return out


def render(r: dict) -> str:
    g = r["groups"]
    faces = g["faces"]["dist_to_w_avg"]
    lines = [f"Report: {r['steps']} Adam steps per image (W+, w̄ init, paper loss with `{r['perceptual_net']}`), "
             f"model `{r['model']}`.", "",
             "| group | n | PSNR (dB) | SSIM | L (×10^5) | ‖w* − w̄‖ |", "|---|---|---|---|---|---|"]
    for label, s in g.items():
        lines.append(f"| {label} | {s['n']} | {s['psnr_db']:.2f} | {s['ssim']:.3f} | {s['loss_x1e5']:.4f} | {s['dist_to_w_avg']:.2f} |")
    lines += ["", "Clustering (paper §5.1: faces lie near w̄, other classes scatter): mean ‖w* − w̄‖ of the "
              f"evaluation faces {faces:.2f} vs " + ", ".join(f"{c} {g[c]['dist_to_w_avg']:.2f}" for c in CLASSES[1:]) + ".",
              "", f"Speed on {r['speed']['device']}: batch 1 {r['speed']['batch1_s_per_step']:.3f} s/step; batch 8 "
              f"{r['speed']['batch8_s_per_step']:.3f} s/step ({r['speed']['batch8_ms_per_image_step']:.0f} ms per image-step)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
