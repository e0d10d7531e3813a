"""Known pretrained files: where to get them and what we know about their contents.

Every entry states how much of its metadata is confirmed. Only a *confirmed* sha256 is
enforced as-is; an unconfirmed one produces a warning on mismatch, and a file without
any hash is pinned on first use (see :mod:`i2s.weights.fetch`). The values come from the
NVlabs/stylegan README and torchvision's model URLs; the comments say which are guesses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KINDS", "Checkpoint", "REGISTRY", "UnknownCheckpoint", "get"]

#: File kinds the fetcher knows how to sanity-check.
KINDS = ("stylegan1-tf-pickle", "torchvision-state-dict", "stylegan2-ada-pytorch-pickle", "stylegan2-tf-pickle")

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Checkpoint:
    """Metadata of one downloadable weights file.

    Attributes:
        name: registry key, e.g. ``"vgg16-imagenet"``.
        filename: file name in the cache (the upstream name).
        urls: download locations, tried in order.
        size: exact size in bytes if confirmed by a source, else ``None``.
        sha256: full SHA-256 (lower-case hex) if any source gives one, else ``None``.
        sha256_confirmed: ``True`` only if ``sha256`` comes from the publisher itself.
        md5_seen: MD5 values quoted by third parties; logged for comparison, never enforced.
        kind: one of :data:`KINDS`.
        license: license of the weights.
        description: free text (provenance, estimated size, caveats).
        sha256_prefix: leading hex digits of the SHA-256 that *are* confirmed (for example
            from a torch.hub-style ``name-<sha256 prefix>.pth`` filename); always enforced.
        max_size: largest size in bytes a genuine copy can have when the exact size is unknown
            (about twice the estimate); a download is cut off beyond it.
    """

    name: str
    filename: str
    urls: tuple[str, ...]
    size: int | None
    sha256: str | None
    sha256_confirmed: bool
    md5_seen: tuple[str, ...]
    kind: str
    license: str
    description: str
    sha256_prefix: str | None = None
    max_size: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}; expected one of {KINDS}")
        if self.sha256 is not None and not _HEX64.fullmatch(self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lower-case hex digits")
        if self.sha256_confirmed and self.sha256 is None:
            raise ValueError(f"{self.name}: sha256_confirmed=True needs a sha256")
        if self.sha256_prefix is not None:
            if not _HEX.fullmatch(self.sha256_prefix):
                raise ValueError(f"{self.name}: sha256_prefix must be lower-case hex")
            if self.sha256 is not None and not self.sha256.startswith(self.sha256_prefix):
                raise ValueError(f"{self.name}: sha256 does not start with sha256_prefix")
        if not self.urls:
            raise ValueError(f"{self.name}: at least one URL is needed")
        if self.max_size is not None and self.size is not None and self.max_size < self.size:
            raise ValueError(f"{self.name}: max_size is below the exact size")


_STYLEGAN1_FFHQ_DRIVE_ID = "1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ"

_ENTRIES = (
    Checkpoint(
        name="stylegan1-ffhq-1024",
        filename="karras2019stylegan-ffhq-1024x1024.pkl",
        urls=(
            # Official link (NVlabs/stylegan README and pretrained_example.py).
            f"https://drive.google.com/uc?id={_STYLEGAN1_FFHQ_DRIVE_ID}&export=download",
            # UNCONFIRMED: guessed from the ".../stylegan/networks/metrics/..." pattern used by
            # NVlabs/stylegan2; no source quotes this exact URL.
            "https://nvlabs-fi-cdn.nvidia.com/stylegan/networks/karras2019stylegan-ffhq-1024x1024.pkl",
        ),
        size=None,
        sha256=None,
        sha256_confirmed=False,
        # Two third-party MD5s that disagree with each other; logged only.
        md5_seen=("5a20ed46ea6494a9e969db2f6b97a88a", "9f4c085b663ed283f5853cc662bd0883"),
        kind="stylegan1-tf-pickle",
        license="CC BY-NC 4.0 (NVIDIA Corporation)",
        description=(
            "Official StyleGAN (v1) FFHQ 1024x1024 network pickle (G, D, Gs; TensorFlow 1.x "
            "dnnlib objects). No official size or checksum is published; the size is estimated "
            "at about 324.5 MB (309.4 MiB) from the parameter count. Google Drive often answers "
            "with an HTML confirmation or quota page: download it in a browser or with gdown and "
            "then run `i2s weights import stylegan1-ffhq-1024 PATH`."
        ),
        max_size=650_000_000,  # twice the estimate
    ),
    Checkpoint(
        name="vgg16-imagenet",
        filename="vgg16-397923af.pth",
        urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
        size=None,  # 553433881 is quoted by third parties only
        # Full value from two third-party sources; the first 8 digits are confirmed by the
        # torch.hub filename convention ("name-<sha256 prefix>.pth").
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        sha256_confirmed=False,
        sha256_prefix="397923af",
        md5_seen=(),
        kind="torchvision-state-dict",
        license="BSD-3-Clause (torchvision); trained on ImageNet (non-commercial research terms)",
        description=(
            "torchvision VGG16 ImageNet weights (VGG16_Weights.IMAGENET1K_V1), state dict used "
            "for the perceptual loss. Also found in torch.hub's checkpoints cache if torchvision "
            "downloaded it before."
        ),
        max_size=1_110_000_000,  # twice the third-party size
    ),
)

_ADA_CDN = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained"
_NVIDIA_NC = "Nvidia Source Code License-NC (NVIDIA Corporation); non-commercial research"


def _unpublished(name: str, url: str, kind: str, description: str, max_size: int) -> Checkpoint:
    """An NVIDIA checkpoint with no published size or checksum: its sha256 is recorded on first use."""
    return Checkpoint(name=name, filename=url.rsplit("/", 1)[-1], urls=(url,), size=None, sha256=None,
                      sha256_confirmed=False, md5_seen=(), kind=kind, license=_NVIDIA_NC,
                      description=description, max_size=max_size)


_STYLEGAN2_ENTRIES = (
    # StyleGAN2 (not the paper's generator): reference-facts §3 and the stylegan2-ada-pytorch README's
    # table of pretrained networks. NVIDIA publishes no size or checksum for any of them; the sha256
    # of the first good copy is recorded on first use (as for StyleGAN v1). Sizes are estimates from
    # the parameter counts (G + G_ema + D in float32), max_size about twice that.
    _unpublished(
        "stylegan2-ffhq-1024", f"{_ADA_CDN}/ffhq.pkl", "stylegan2-ada-pytorch-pickle",
        "StyleGAN2 FFHQ 1024x1024 generator as a stylegan2-ada-pytorch pickle ('trained using original "
        "StyleGAN2', i.e. config-f converted to PyTorch), domain: faces. Read without running the code "
        "it carries. No published size or checksum; estimated at about 381 MB (G, G_ema 33.2 M values "
        "each, D 29.0 M).",
        max_size=800_000_000,
    ),
    _unpublished(
        "stylegan2-afhqcat-512", f"{_ADA_CDN}/afhqcat.pkl", "stylegan2-ada-pytorch-pickle",
        "StyleGAN2-ADA AFHQ Cat 512x512 generator (stylegan2-ada-pytorch pickle, 'trained from scratch "
        "using ADA'), domain: cats. No published size or checksum; estimated at about 364 MB.",
        max_size=750_000_000,
    ),
    _unpublished(
        "stylegan2-ffhq-config-f", "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl",
        "stylegan2-tf-pickle",
        "The original StyleGAN2 config-f FFHQ 1024x1024 TensorFlow pickle (G, D, Gs; dnnlib Network "
        "version 4), domain: faces; the same generator as stylegan2-ffhq-1024. No published size or "
        "checksum; estimated at about 381 MB.",
        max_size=800_000_000,
    ),
)

#: All known checkpoints by name.
REGISTRY: dict[str, Checkpoint] = {c.name: c for c in _ENTRIES + _STYLEGAN2_ENTRIES}


class UnknownCheckpoint(KeyError):
    """Raised by :func:`get` for a name that is not in :data:`REGISTRY`."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def get(name: str) -> Checkpoint:
    """Return the registry entry called ``name``.

    Raises:
        UnknownCheckpoint: (a ``KeyError``) naming the known checkpoints.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UnknownCheckpoint(f"unknown weights {name!r}; known: {known}") from None
