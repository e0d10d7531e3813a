"""An encoder that predicts W+ from an image, to start Algorithm 1 near the answer.

The paper names speed as its main limitation (5000 steps per image). Hybrid methods start the
optimisation from a learned prediction (Zhu et al., *In-Domain GAN Inversion*, ECCV 2020;
Richardson et al., pSp; Tov et al., e4e). Ours is trained on the generator's own samples, so no
data set is needed: z -> w+ (with style mixing, so that W+ codes whose rows differ are seen) ->
G(w+) -> the encoder predicts w+ back. The loss is the latent MSE plus the image MSE of the
re-synthesised prediction (0-255 pixels, as the embedding loss): the latent term is cheap and
stable, the image term makes errors that matter to the picture count most. With ``--real`` (the
generator's training photos) a share of every batch is real photos, with the image MSE alone:
on samples alone an encoder learns G's images, not photos (measured on mini: 24.6 dB on samples,
14.6 dB on held-out photos after 15k images). ``--lambda-loss`` adds Algorithm 1's own loss
(perceptual + MSE, §3.3) on every image, photos included: the objective the optimisation it
starts will minimise.

Architecture: the kit's ImageNet EfficientNet-Lite0 (:mod:`i2s.features`, fine-tuned) reads the
image up-sampled to ``input_size``; its stage-2, -4 and -6 activations are reduced by 1x1
convolutions, pooled to 4x4 and flattened into a two-layer MLP that predicts the offset of each
W+ row from w̄ (``w+ = w̄ + Δ``; Δ = 0 at initialisation, so an untrained encoder starts at the
paper's own init).

``python -m i2s.encoder --model mini --out RUN`` trains (progress, checkpoints, ``--resume``,
``--minutes``; ``--from ENCODER`` begins from an exported encoder, e.g. the shipped one on a
machine without its checkpoint); :func:`load_encoder` and ``i2s.runner.embed(..., init="encoder")`` use the result.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    import numpy as np

from .features import load_feature_net, preprocess
from .io import atomic_torch_save
from .signals import DeferredSignals

__all__ = ["Encoder", "EncoderTrainer", "load_encoder", "read_encoder_file", "read_checkpoint", "default_encoder", "find_encoder", "encoder_init", "encoder_id",
           "FORMAT"]

FORMAT = "i2s-encoder"
MAX_FILE_BYTES = 256 << 20  # an exported encoder is ~25 MB in fp16, a checkpoint ~140 MB
LOSS_SCALE = 1e4  # --lambda-loss divides Algorithm 1's loss by this (~1 at an untrained encoder's start: measured)
STAGES = (2, 4, 6)  # 40, 112, 320 channels


class Encoder(nn.Module):
    """image [N, 3, R, R] in [-1, 1] -> W+ [N, num_layers, w_dim]."""

    def __init__(self, num_layers: int, w_dim: int, w_avg: torch.Tensor, input_size: int = 128,
                 reduce: int = 32, hidden: int = 1024, pretrained: bool = True) -> None:
        super().__init__()
        net = load_feature_net() if pretrained else _random_feature_net()
        self.backbone = net.model.train().requires_grad_(True)  # fine-tuned (its batch norms too)
        self.input_size, self.num_layers, self.w_dim = input_size, num_layers, w_dim
        chans = {2: 40, 4: 112, 6: 320}
        self.reduce = nn.ModuleList(nn.Conv2d(chans[s], reduce, 1) for s in STAGES)
        self.mlp = nn.Sequential(nn.Linear(len(STAGES) * reduce * 16, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, num_layers * w_dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.register_buffer("w_avg", w_avg.detach().float().clone().view(1, 1, w_dim))

    def config(self) -> dict:
        return {"num_layers": self.num_layers, "w_dim": self.w_dim, "input_size": self.input_size,
                "reduce": self.reduce[0].out_channels, "hidden": self.mlp[0].out_features}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.backbone
        h = m.bn1(m.conv_stem(preprocess(x, self.input_size)))
        feats = []
        for i, block in enumerate(m.blocks[: max(STAGES) + 1]):
            h = block(h)
            if i in STAGES:
                feats.append(h)
        flat = torch.cat([F.adaptive_avg_pool2d(r(f), 4).flatten(1) for r, f in zip(self.reduce, feats)], 1)
        delta = self.mlp(flat).view(-1, self.num_layers, self.w_dim)
        return self.w_avg + delta


def _random_feature_net():
    import timm

    from .features import FeatureNet

    return FeatureNet(timm.create_model("tf_efficientnet_lite0", pretrained=False))


def read_encoder_file(path: str | Path, G) -> dict:
    """The contents of an exported encoder file for ``G`` (size-checked; refused in one line when
    it is not an encoder file or was trained for other weights)."""
    from .models import weights_hash
    from .weights.limits import load_kit_file

    obj = load_kit_file(path, MAX_FILE_BYTES, "encoder file")
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"{path}: not an i2s encoder file")
    if obj["model_sha256"] != weights_hash(G):
        raise ValueError(f"{path}: an encoder for {obj['model']!r}, not for the generator {G.name!r} "
                         "(other weights); train one with `i2s train-encoder --model ...`")
    return obj


def load_encoder(path: str | Path, G) -> Encoder:
    """An encoder file for ``G`` (refused when it was trained for other weights)."""
    obj = read_encoder_file(path, G)
    cfg = obj["config"]
    enc = Encoder(cfg["num_layers"], cfg["w_dim"], G.w_avg, cfg["input_size"], cfg["reduce"], cfg["hidden"],
                  pretrained=False)
    enc.load_state_dict({k: v.float() for k, v in obj["state_dict"].items()})
    return enc.eval().requires_grad_(False).to(G.device)


def default_encoder(G) -> Path:
    """Where G's encoder lives: ``data/models/<name>-encoder.pt`` (shipped) or
    ``$I2S_HOME/encoders/<weights sha256[:16]>.pt`` (trained by a user)."""
    from .models import REPO_ROOT, weights_hash
    from .weights.fetch import i2s_home

    shipped = REPO_ROOT / "data" / "models" / f"{G.name}-encoder.pt"
    return shipped if shipped.is_file() else i2s_home() / "encoders" / f"{weights_hash(G)[:16]}.pt"


def find_encoder(G, encoder: str | Path | None = None) -> Path:
    """``encoder`` (a path) or G's default encoder file; FileNotFoundError saying how to train one."""
    path = Path(encoder) if encoder is not None else default_encoder(G)
    if not path.is_file():
        raise FileNotFoundError(f"no encoder for {G.name} at {path}: train one with "
                                f"`i2s train-encoder --model {G.name} --out RUN` (or give encoder=PATH)")
    return path


def encoder_id(encoder: nn.Module) -> str:
    """sha256 of an encoder's weights: which encoder started a run (its run identity, cache keys)."""
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(encoder.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def encoder_init(G, images: torch.Tensor, encoder=None, space: str = "w+") -> torch.Tensor:
    """The encoder's W+ prediction for ``images`` (the mean row for ``space="w"``): the start of
    Algorithm 1 with ``init="encoder"``. ``encoder``: an :class:`Encoder`, its file, or None for
    G's own (:func:`default_encoder`)."""
    if encoder is None or isinstance(encoder, (str, Path)):
        encoder = load_encoder(find_encoder(G, encoder), G)
    w = encoder.eval()(images.to(G.device)).to(G.w_avg.dtype)
    return w.mean(1) if space == "w" else w


def read_checkpoint(path: str | Path, device: str = "cpu") -> dict:
    """A training checkpoint (``encoder-checkpoint.pt``), read bounded; a damaged or foreign file
    is one ``ValueError`` line naming it."""
    from .weights.limits import safe_torch_load

    st = safe_torch_load(path, max_bytes=MAX_FILE_BYTES, what="i2s encoder checkpoint", map_location=device)
    if not isinstance(st, dict) or st.get("format") != FORMAT + "-checkpoint":
        raise ValueError(f"{path} is not an i2s encoder checkpoint (no {FORMAT}-checkpoint format field)")
    return st


class EncoderTrainer:
    """Trains an :class:`Encoder` on samples of G (latent MSE + image MSE, optionally the
    embedding loss itself), resumable.

    ``lambda_loss`` > 0 adds Algorithm 1's own objective (``loss_fn``, an
    :class:`i2s.loss.EmbeddingLoss`: perceptual + pixel MSE, §3.3) between G(prediction) and
    every image of the batch, divided by :data:`LOSS_SCALE`: the encoder is then trained on what
    the optimisation it starts will minimise, photos included (the image MSE alone does not see
    the perceptual part)."""

    def __init__(self, G, out: str | Path | None, batch: int = 16, lr: float = 1e-4, lambda_image: float = 1.0,
                 style_mixing: float = 0.5, seed: int = 0, input_size: int = 128, precision: str = "auto",
                 real: "np.ndarray | None" = None, real_fraction: float = 0.5, lambda_loss: float = 0.0,
                 loss_fn: "nn.Module | None" = None) -> None:
        from . import precision as P

        self.G = G.eval().requires_grad_(False)
        self.out = Path(out) if out is not None else None
        self.batch, self.lambda_image, self.style_mixing, self.seed = batch, lambda_image, style_mixing, seed
        if lambda_loss > 0 and loss_fn is None:
            from .loss import EmbeddingLoss

            loss_fn = EmbeddingLoss()
        self.lambda_loss = lambda_loss
        self.loss_fn = loss_fn.to(G.device).eval().requires_grad_(False) if lambda_loss > 0 else None
        # real aligned photos [N, R, R, 3] uint8 (G's training set): a share of every batch is
        # reconstructed through G (image MSE only: they have no known w), against the domain gap
        # between G's samples and photos
        self.real, self.real_fraction = real, (real_fraction if real is not None else 0.0)
        torch.manual_seed(seed)
        self.enc = Encoder(G.num_layers, G.w_dim, G.w_avg, input_size).to(G.device)
        self.opt = torch.optim.Adam(self.enc.parameters(), lr=lr)
        self.precision = P.resolve(precision, G.device)
        self.images_seen, self.wall_time = 0, 0.0
        self.gen = torch.Generator().manual_seed(seed + 1)

    @torch.no_grad()
    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(w+ [n, L, 512], G(w+) [n, 3, R, R]) with style mixing at a random layer."""
        G = self.G
        z = torch.randn(n, G.z_dim, generator=self.gen).to(G.device)
        w = G.mapping(z)
        if self.style_mixing > 0:
            z2 = torch.randn(n, G.z_dim, generator=self.gen).to(G.device)
            w2 = G.mapping(z2)
            cut = torch.randint(1, G.num_layers, (n, 1, 1), generator=self.gen).to(G.device)
            mix = (torch.rand(n, 1, 1, generator=self.gen) < self.style_mixing).to(G.device)
            rows = torch.arange(G.num_layers, device=G.device).view(1, -1, 1)
            w = torch.where(mix & (rows >= cut), w2, w)
        return w, G.synthesis(w).clamp(-1, 1)

    def real_batch(self, n: int) -> torch.Tensor:
        """``n`` random real photos in [-1, 1], randomly mirrored."""
        idx = torch.randint(0, len(self.real), (n,), generator=self.gen).numpy()
        x = torch.from_numpy(self.real[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1
        flip = torch.rand(n, generator=self.gen) < 0.5
        x[flip] = x[flip].flip(-1)
        return x.to(self.G.device)

    def step(self) -> dict[str, float]:
        """One Adam step: on G's samples the latent MSE plus the image MSE of G(prediction); on
        the real share of the batch (``real``), the image MSE alone."""
        from . import precision as P

        n_real = int(round(self.batch * self.real_fraction))
        w, x = self.sample(self.batch - n_real)
        if n_real:
            x = torch.cat([x, self.real_batch(n_real)])
        with P.autocast(self.precision, self.G.device):
            pred = self.enc(x).float()
        n_fake = self.batch - n_real
        loss_w = (pred[:n_fake] - w).square().mean()
        loss = loss_w
        loss_img = loss_real = loss_emb = torch.zeros(())
        if self.lambda_image > 0 or self.lambda_loss > 0:
            with P.autocast(self.precision, self.G.device):
                recon = self.G.synthesis(pred).float()
        if self.lambda_image > 0:
            err = (127.5 ** 2) * (recon - x).square().flatten(1).mean(1) / 1000.0  # ~1 for a fair start
            loss_img = err[:n_fake].mean()
            loss_real = err[n_fake:].mean() if n_real else loss_real
            loss = loss + self.lambda_image * err.mean()  # every image alike, sample or photo
        if self.lambda_loss > 0:  # Algorithm 1's objective L(G(w), I), per image
            loss_emb = self.loss_fn(recon, x).mean() / LOSS_SCALE
            loss = loss + self.lambda_loss * loss_emb
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.images_seen += self.batch
        return {"loss_w": float(loss_w.detach()), "loss_image": float(loss_img.detach()),
                "loss_real": float(loss_real.detach()), "loss_embed": float(loss_emb.detach())}

    def state(self) -> dict:
        return {"format": FORMAT + "-checkpoint", "encoder": self.enc.state_dict(), "opt": self.opt.state_dict(),
                "images_seen": self.images_seen, "wall_time": self.wall_time, "gen": self.gen.get_state(),
                "torch_rng": torch.get_rng_state()}

    def load_state(self, st: dict) -> None:
        self.enc.load_state_dict(st["encoder"])
        self.opt.load_state_dict(st["opt"])
        self.images_seen, self.wall_time = int(st["images_seen"]), float(st["wall_time"])
        self.gen.set_state(st["gen"])
        torch.set_rng_state(st["torch_rng"])

    def export(self, path: str | Path) -> Path:
        """The encoder alone (fp16), with the generator it belongs to."""
        from .models import weights_hash

        sd = {k: (v.half() if v.is_floating_point() else v) for k, v in self.enc.state_dict().items()}
        return atomic_torch_save({"format": FORMAT, "config": self.enc.config(), "state_dict": sd,
                                  "model": self.G.name, "model_sha256": weights_hash(self.G),
                                  "images_seen": self.images_seen, "wall_time_s": self.wall_time,
                                  "lambda_loss": self.lambda_loss,
                                  "perceptual_net": self.loss_fn.perceptual_net if self.loss_fn is not None else "none"},
                                 path)

    def start_from(self, path: str | Path) -> None:
        """Begin from an exported encoder's weights (e.g. the shipped one, on a machine without its
        training checkpoint): a fresh optimiser, the image count and time carried on."""
        obj = read_encoder_file(path, self.G)
        if obj["config"] != self.enc.config():
            raise ValueError(f"{path}: an encoder of another shape ({obj['config']}, here {self.enc.config()})")
        self.enc.load_state_dict({k: v.float() for k, v in obj["state_dict"].items()})
        self.images_seen, self.wall_time = int(obj.get("images_seen", 0)), float(obj.get("wall_time_s", 0.0))

    def train(self, images: int, ckpt_every: int = 5000, minutes: float | None = None, progress: bool = True) -> None:
        from tqdm.auto import tqdm

        deadline = time.monotonic() + minutes * 60 if minutes else math.inf
        bar = tqdm(total=images, initial=min(self.images_seen, images), unit="img", disable=not progress, desc="encoder")
        next_ckpt = (self.images_seen // ckpt_every + 1) * ckpt_every
        # Ctrl-C / SIGTERM (a background job's stop) end the step in hand, save, then stop the run
        with DeferredSignals(interrupt_twice=False) as signals:
            try:
                while self.images_seen < images and time.monotonic() < deadline and signals.pending is None:
                    t0 = time.perf_counter()
                    m = self.step()
                    self.wall_time += time.perf_counter() - t0
                    bar.update(self.batch)
                    bar.set_postfix(w=f"{m['loss_w']:.4f}", img=f"{m['loss_image']:.3f}", real=f"{m['loss_real']:.3f}",
                                    **({"L": f"{m['loss_embed']:.3f}"} if self.lambda_loss > 0 else {}), refresh=False)
                    if self.out is not None and self.images_seen >= next_ckpt:
                        self.save()
                        next_ckpt += ckpt_every
                if signals.pending is not None:
                    print(f"\n[i2s.encoder] stopped by a signal at {self.images_seen} images: saving a checkpoint",
                          file=sys.stderr)
            finally:
                bar.close()
                if self.out is not None:
                    self.save()
            signals.raise_pending()  # saved: now KeyboardInterrupt / SystemExit(143)

    def save(self) -> None:
        atomic_torch_save(self.state(), self.out / "encoder-checkpoint.pt")
        self.export(self.out / "encoder.pt")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="i2s train-encoder", description="Train an encoder image -> W+ on samples of a generator")
    p.add_argument("--model", default="mini", help="generator name or file (default: mini)")
    p.add_argument("--out", required=True, help="run folder: encoder-checkpoint.pt, encoder.pt")
    p.add_argument("--images", type=float, default=200_000, help="training images in all (default: 200000)")
    p.add_argument("--batch", type=int, default=16, help="batch size (default: 16)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4)")
    p.add_argument("--lambda-image", type=float, default=1.0, help="weight of the image MSE term (default: 1)")
    p.add_argument("--real", default=None, help="real aligned photos, an [N, R, R, 3] uint8 .npy (mini: "
                   "$I2S_HOME/train-data/faces64.npy, its training set): a share of each batch, image losses only")
    p.add_argument("--real-fraction", type=float, default=0.5, help="share of each batch from --real (default: 0.5)")
    p.add_argument("--lambda-loss", type=float, default=0.0, help="weight of Algorithm 1's own loss (perceptual + MSE, "
                   f"divided by {LOSS_SCALE:g}) on every image (default: 0, off)")
    p.add_argument("--resume", action="store_true", help="continue OUT/encoder-checkpoint.pt")
    p.add_argument("--from", dest="start", default=None, metavar="ENCODER",
                   help="begin from an exported encoder's weights (e.g. data/models/mini-faces64-encoder.pt)")
    p.add_argument("--minutes", type=float, default=None, help="stop after this many minutes, with a checkpoint")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (default: cpu)")
    p.add_argument("--precision", default="auto", choices=("auto", "float32", "bf16"),
                   help="bf16 autocast where native (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from .models import load_generator

    G = load_generator(a.model, device=a.device)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    real = None
    if a.real:
        import numpy as np

        try:
            real = np.load(a.real, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            print(f"[i2s] {a.real}: not a readable .npy array ({e}); give the array of aligned photos", file=sys.stderr)
            return 2
        if real.ndim != 4 or real.shape[1:] != (G.resolution, G.resolution, 3) or real.dtype != np.uint8:
            print(f"[i2s] {a.real}: {real.shape} {real.dtype}, not [N, {G.resolution}, {G.resolution}, 3] uint8 photos "
                  f"(scripts/prepare_mini_data.py writes them)", file=sys.stderr)
            return 2
    if not 0 <= a.real_fraction < 1 or (real is not None and a.lambda_image <= 0 and a.lambda_loss <= 0):
        print(f"[i2s] --real-fraction must be in [0, 1) and --real needs --lambda-image or --lambda-loss > 0 (photos "
              f"have only the image losses), got {a.real_fraction}, {a.lambda_image} and {a.lambda_loss}", file=sys.stderr)
        return 2
    if a.resume and a.start:
        print("[i2s] --resume and --from exclude each other (a checkpoint already holds the weights)", file=sys.stderr)
        return 2
    t = EncoderTrainer(G, out, batch=a.batch, lr=a.lr, lambda_image=a.lambda_image, precision=a.precision,
                       real=real, real_fraction=a.real_fraction, lambda_loss=a.lambda_loss)
    ck = out / "encoder-checkpoint.pt"
    if a.resume:
        if not ck.is_file():
            print(f"[i2s] no checkpoint {ck} to resume", file=sys.stderr)
            return 2
        try:
            t.load_state(read_checkpoint(ck, a.device))
        except (ValueError, KeyError, RuntimeError) as e:
            print(f"[i2s] {str(e).splitlines()[0]}; start a new run with another --out (or --from an exported "
                  "encoder)", file=sys.stderr)
            return 2
        print(f"[i2s] resumed {ck} at {t.images_seen} images")
    elif ck.exists():
        print(f"[i2s] {ck} exists: pass --resume to continue it, or another --out", file=sys.stderr)
        return 2
    elif a.start:
        try:
            t.start_from(a.start)
        except (FileNotFoundError, ValueError, RuntimeError) as e:
            print(f"[i2s] {str(e).splitlines()[0]}", file=sys.stderr)
            return 2
        print(f"[i2s] starting from {a.start} ({t.images_seen} images seen)")
    try:
        t.train(int(a.images), minutes=a.minutes)
    except KeyboardInterrupt:
        return 130
    print(f"[i2s] encoder at {t.images_seen} images ({t.wall_time / 60:.1f} min): {out / 'encoder.pt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
