"""Embedding speed of Algorithm 1: ``i2s.embed`` against a naive reference, same run, same images.

For each model and batch size the table gives image-steps per second (optimiser steps times
images, per second) of

* ``ref``: the naive reference of ``benchmarks/naive_reference.py`` (one image at a time, fp32,
  the target's VGG features recomputed every step, the generator written out literally);
* ``i2s``: :func:`i2s.embed.embed` with its defaults on that device (batched; on CUDA bf16
  autocast, cuDNN autotuning, fused Adam),

the speed-up, the time 5000 steps (the paper's protocol) take per image at that rate, and the
final loss of both after the same number of steps from w̄ on the same images (the mean over the
images both embedded), so that a speed-up that changed the result would show. In float32 the two
agree to float rounding, which Adam amplifies over the steps (the early steps of Algorithm 1 are
steep): relative differences of 1e-4..1e-2 after 20 steps are that; in float64 the two agree to
1e-12 (tests/test_speed_equivalence.py). Random weights cost the same as trained ones, so
``random-ffhq`` measures the paper's 1024-px architecture. The reference does not batch: it is
timed once per model (before i2s.embed, with the allocator as it comes) and set beside every batch
size. Per-step times exclude the one-off set-up (target features, final render):
(t(steps) - t(1)) / (steps - 1), best of ``--repeats`` runs.

On CUDA a second table compares the options at the largest batch (float32 vs the default bf16
autocast, channels-last; ``--compile`` adds torch.compile), with the bf16 - fp32 loss difference
and the peak GPU memory, and a last line checks the issue's target (1024 px, 5000 steps, batched:
at most 40 s per image):

On a CPU every row is run on both arithmetic paths where the CPU runs bf16 natively (AVX-512
bf16 / AMX, :mod:`i2s.precision`): float32 and bf16 autocast side by side, with the CPU's
capability, the floating-point work of one image-step (counted by torch's FlopCounterMode on
one forward + backward of generator and loss) and the fraction of the CPU's peak each reaches
(fp32: AVX-512 FMA, 2 units x 16 lanes x 2 flop per cycle and core; bf16: AMX tiles,
1024 flop per cycle and core, or AVX-512 ``vdpbf16ps`` without AMX), at the clock in /proc/cpuinfo.

    python benchmarks/embed_speed.py                    # CPU: mini (batch 1, 8, 16, 32) and FFHQ-1024 (1, 8)
    python benchmarks/embed_speed.py --device cuda      # GPU: batch 1 and 16, plus the options table
    python benchmarks/embed_speed.py --models random-mini --batches 1,8 --steps 20
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import naive_reference as ref  # noqa: E402

from i2s.runner import embed  # noqa: E402
from i2s.loss import EmbeddingLoss, load_vgg16_features  # noqa: E402
from i2s.models import load_generator  # noqa: E402


def machine(dev: torch.device) -> str:
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        return (f"{p.name} ({p.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}, "
                f"cuDNN {torch.backends.cudnn.version()}")
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{name}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads"


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_peaks(threads: int) -> dict[str, float]:
    """Peak GFLOP/s of ``threads`` cores: fp32 FMA and the bf16 dot-product path."""
    flags = cpu_flags()
    try:
        mhz = max(float(l.split(":")[1]) for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("cpu MHz"))
    except (OSError, ValueError):
        mhz = float("nan")
    fp32 = 64 if "avx512f" in flags else (32 if "avx2" in flags else 16)  # flop / cycle / core
    bf16 = 1024 if "amx_bf16" in flags else (128 if "avx512_bf16" in flags else float("nan"))
    return {"ghz": mhz / 1000, "float32": fp32 * mhz / 1000 * threads, "bf16": bf16 * mhz / 1000 * threads,
            "bf16_path": "AMX" if "amx_bf16" in flags else ("AVX512_BF16" if "avx512_bf16" in flags else "none")}


def flops_per_image_step(G, loss_fn, dev) -> float:
    """Floating-point operations of one optimiser step for one image (forward + backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = targets(G, 1, dev)
    target = loss_fn.target(x)
    w = G.w_avg.expand(1, G.num_layers, -1).clone().requires_grad_(True)
    with FlopCounterMode(display=False) as fc:
        loss_fn(G.synthesis(w), target).sum().backward()
    return float(fc.get_total_flops())


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def targets(G, n: int, dev: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        z = torch.randn(n, G.z_dim, generator=g).to(dev)
        return G.synthesis(G.mapping(z, truncation_psi=0.7)).clamp(-1, 1)


def per_step(run, steps):
    """Seconds per optimiser step of ``run(n)`` (which returns (seconds, result)), without the
    one-off set-up and final render: (t(steps) - t(1)) / (steps - 1). Also the steps-run's result."""
    t1, _ = run(1)
    t, result = run(steps)
    return (t - t1) / (steps - 1), result


def reference_run(G, loss_fn, imgs, dev):
    """run(n) for the naive reference: each image of imgs in turn; result = final losses [k]."""
    slices = ref.vgg_slices(loss_fn)

    def run(n):
        sync(dev)
        t = time.perf_counter()
        finals = [ref.embed_one(G, slices, imgs[i:i + 1], n)[2] for i in range(imgs.shape[0])]
        sync(dev)
        return (time.perf_counter() - t) / imgs.shape[0], torch.tensor(finals)  # per image

    return run


def embed_run(G, loss_fn, imgs, dev, **kw):
    """run(n) for i2s.embed on the batch imgs; result = final losses [N]."""
    def run(n):
        sync(dev)
        t = time.perf_counter()
        res = embed(G, imgs, steps=n, loss_fn=loss_fn, progress=False, **kw)
        sync(dev)
        return time.perf_counter() - t, res.loss

    return run


def fmt_loss(x: float) -> str:
    return f"{x:.6g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="random-mini,random-ffhq")
    ap.add_argument("--batches", default=None, help="default: 1,8,16,32 for mini and 1,8 at 1024 px on CPU; 1,16 on CUDA")
    ap.add_argument("--precisions", default=None, help="CPU: float32,bf16 (default: both where bf16 is native)")
    ap.add_argument("--steps", default=None, help="steps per timed run, per model: e.g. 20,3 (default CPU 20,3; CUDA 50,50)")
    ap.add_argument("--ref-images", type=int, default=None, help="images the reference embeds (default 2 CPU mini, 1 CPU 1024, 4 CUDA)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per side (default 2; 1 for 1024 px on CPU)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-options", action="store_true", help="CUDA: skip the options table")
    ap.add_argument("--compile", action="store_true", help="CUDA options table: also the torch.compile variants "
                    "(each compiles for minutes)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    models = args.models.split(",")
    from i2s import precision as P

    def batches_for(G) -> list[int]:
        spec = args.batches or ("1,16" if cuda else ("1,8" if G.resolution >= 1024 else "1,8,16,32"))
        return [int(b) for b in spec.split(",")]

    precisions = (args.precisions.split(",") if args.precisions else
                  (["bf16"] if cuda else (["float32", "bf16"] if P.bf16_supported("cpu") else ["float32"])))
    peaks = cpu_peaks(torch.get_num_threads()) if not cuda else None
    steps_for = dict(zip(models, [int(s) for s in (args.steps or ("50,50" if cuda else "20,3")).split(",")] * len(models)))

    vgg, label = load_vgg16_features("auto")
    loss_fn = EmbeddingLoss(perceptual=(vgg, label))
    print(f"device: {machine(dev)}")
    if peaks:
        print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, bf16 native: {P.bf16_supported('cpu')} "
              f"(path {peaks['bf16_path']}); clock {peaks['ghz']:.2f} GHz; peak of {torch.get_num_threads()} cores: "
              f"fp32 FMA {peaks['float32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    print(f"torch {torch.__version__}; perceptual net {label}; i2s defaults on this device"
          f"{' (bf16 autocast, fused Adam)' if cuda else ' (float32)'}; per-step times without set-up, best of "
          f"{args.repeats or '2 (1 at 1024 px on CPU)'} runs; losses: mean over the first min(batch, ref images)")
    head = (f"{'model':<12} {'res':>5} {'batch':>5} {'path':>8} {'steps':>5} {'ref img-st/s':>12} {'i2s img-st/s':>12} "
            f"{'speed-up':>8} {'5000 st/img':>11} {'ref loss':>11} {'i2s loss':>11} {'rel diff':>9} {'GFLOP/s':>8} {'of peak':>7}")
    print(head)
    print("-" * len(head))
    rows = []
    for model in models:
        G = load_generator(model, device=dev, verbose=False)
        steps = steps_for[model]
        batches = batches_for(G)
        k = args.ref_images or (4 if cuda else (2 if G.resolution <= 256 else 1))
        imgs = targets(G, max(max(batches), k), dev)
        ref_run = reference_run(G, loss_fn, imgs[:k], dev)
        gflop = flops_per_image_step(G, loss_fn, dev) / 1e9
        print(f"{model}: {gflop:.2f} GFLOP per image-step (forward + backward)")
        cases = [(b, p) for b in batches for p in (precisions if not cuda else ["default"])]
        runs = {(b, p): embed_run(G, loss_fn, imgs[:b], dev, **({} if p == "default" else {"precision": p}))
                for b, p in cases}
        repeats = args.repeats or (1 if G.resolution >= 1024 and not cuda else 2)
        # The reference first: i2s.embed tunes glibc's allocator while it runs (see
        # i2s.embed._large_cpu_blocks_kept), and the heap it leaves behind would speed up a
        # reference measured after it. The reference is timed with the allocator as it comes.
        ref_run(1)  # warm-up (allocator, oneDNN/cuDNN kernels)
        best_ref, ref_loss = float("inf"), None
        for _ in range(repeats):
            t, ref_loss = per_step(ref_run, steps)
            best_ref = min(best_ref, t)
        for c in cases:
            runs[c](1)  # warm-up
        best = {c: (float("inf"), None) for c in cases}
        for _ in range(repeats):
            for c in cases:
                t, loss = per_step(runs[c], steps)
                if t < best[c][0]:
                    best[c] = (t, loss)
        for (b, p) in cases:
            t, loss = best[(b, p)]
            m = min(k, b)
            r_l, o_l = ref_loss[:m].mean().item(), loss[:m].mean().item()
            ref_ips, opt_ips = 1 / best_ref, b / t
            rate = gflop * opt_ips
            frac = f"{rate / peaks[p]:>7.1%}" if peaks and p in peaks else f"{'':>7}"
            print(f"{model:<12} {G.resolution:>5} {b:>5} {p:>8} {steps:>5} {ref_ips:>12.2f} {opt_ips:>12.2f} "
                  f"{opt_ips / ref_ips:>7.2f}x {5000 / opt_ips:>9.0f} s {fmt_loss(r_l):>11} {fmt_loss(o_l):>11} "
                  f"{(o_l - r_l) / r_l:>+9.1e} {rate:>8.1f} {frac}", flush=True)
            rows.append((model, G.resolution, b, opt_ips))
        if cuda and not args.no_options:
            options_table(G, loss_fn, imgs[:max(batches)], steps, dev, repeats, args.compile)
        del G
        if cuda:
            torch.cuda.empty_cache()
    if cuda:
        for model, res, b, ips in rows:
            if res == 1024 and b == max(batches):
                verdict = "meets" if 5000 / ips <= 40 else "misses"
                print(f"\ntarget (1024 px, paper's 5000 steps, batched: <= 40 s per image): {5000 / ips:.1f} s per image "
                      f"at batch {b} -> {verdict} it")


def options_table(G, loss_fn, imgs, steps, dev, repeats, with_compile=False):
    """CUDA only: the speed options at the largest batch, and the bf16 - fp32 loss difference."""
    variants = {
        "fp32": dict(amp=False),
        "bf16 (default)": dict(amp=True),
        "bf16+channels_last": dict(amp=True, channels_last=True),
    }
    if with_compile:
        variants.update({"bf16+compile": dict(amp=True, compile=True),
                         "bf16+channels_last+compile": dict(amp=True, channels_last=True, compile=True)})
    b = imgs.shape[0]
    print(f"\n  options, {G.resolution} px, batch {b}, {steps} steps (compiled variants warm up once first)")
    print(f"  {'variant':<28} {'img-st/s':>9} {'5000 st/img':>11} {'mean loss':>11} {'vs fp32':>9} {'peak GiB':>8}")
    results = {}
    for name, kw in variants.items():
        run = embed_run(G, loss_fn, imgs, dev, **kw)
        torch.cuda.reset_peak_memory_stats(dev)
        try:
            run(2)  # warm-up / compilation
            ts = []
            for _ in range(repeats):
                t, loss = per_step(run, steps)
                ts.append(t)
        except Exception as e:  # noqa: BLE001 - report and go on with the other variants
            print(f"  {name:<28} failed: {type(e).__name__}: {str(e)[:120]}")
            continue
        results[name] = (min(ts), loss)
        ips = b / min(ts)
        base = results.get("fp32")
        diff = "" if base is None else f"{((loss - base[1]) / base[1]).abs().max().item():>9.1e}"
        peak = torch.cuda.max_memory_allocated(dev) / 2**30
        print(f"  {name:<28} {ips:>9.1f} {5000 / ips:>9.1f} s {loss.mean().item():>11.6g} {diff:>9} {peak:>8.1f}", flush=True)
    if "fp32" in results and "bf16 (default)" in results:
        a, c = results["fp32"][1], results["bf16 (default)"][1]
        print(f"  bf16 vs fp32 after {steps} steps: final loss differs by at most "
              f"{((c - a) / a).abs().max().item():.2e} (relative, over the {b} images); median "
              f"{statistics.median(((c - a) / a).abs().tolist()):.2e}")


if __name__ == "__main__":
    main()
