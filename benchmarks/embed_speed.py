"""Embedding speed of Algorithm 1 on this machine: optimiser steps per second.

Prints a table: model, resolution, batch, seconds per step, image-steps per second, and the
time 5000 steps (the paper's protocol) would take per image. Random weights have the same
cost as trained ones, so `random-ffhq` measures the paper's 1024-px architecture.

    python benchmarks/embed_speed.py [--models random-mini,random-ffhq] [--batches 1,8] [--steps 5]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from i2s.embed import embed
from i2s.loss import EmbeddingLoss, load_vgg16_features
from i2s.models import load_generator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="random-mini,random-ffhq")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--max-batch-1024", type=int, default=1, help="largest batch tried at 1024 px on CPU")
    args = ap.parse_args()

    vgg, label = load_vgg16_features("auto")
    loss_fn = EmbeddingLoss(vgg=vgg, vgg_label=label)
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; perceptual net {label}")
    print(f"{'model':<12} {'res':>5} {'batch':>5} {'s/step':>8} {'img-steps/s':>12} {'5000 steps/img':>15}")
    for model in args.models.split(","):
        G = load_generator(model, device=dev, verbose=False)
        for b in (int(x) for x in args.batches.split(",")):
            if G.resolution >= 1024 and dev.type == "cpu" and b > args.max_batch_1024:
                continue
            g = torch.Generator().manual_seed(0)
            with torch.no_grad():
                imgs = G.synthesis(G.mapping(torch.randn(b, G.z_dim, generator=g).to(dev))).clamp(-1, 1)
            embed(G, imgs, steps=1, loss_fn=loss_fn, progress=False)  # warm-up
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            embed(G, imgs, steps=args.steps, loss_fn=loss_fn, progress=False)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            dt = (time.perf_counter() - t) / args.steps  # includes the final render, a small overestimate
            print(f"{model:<12} {G.resolution:>5} {b:>5} {dt:>8.3f} {b / dt:>12.2f} {5000 * dt / b / 60:>13.1f} min")


if __name__ == "__main__":
    main()
