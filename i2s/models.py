"""Which generator runs: ``load_generator`` and the two model tiers.

* **Paper tier** — ``"ffhq"`` (alias ``"stylegan1-ffhq-1024"``): NVIDIA's official StyleGAN v1
  FFHQ-1024 weights, fetched once by ``i2s weights fetch stylegan1-ffhq-1024`` and converted
  (without TensorFlow) into the i2s cache.
* **Embedded tier** — ``"mini"``: a 64-px StyleGAN v1 trained by us on 28k face photos and
  shipped in the repository (``data/models/mini-faces64.pt``), so everything runs offline.
  ``"mini-v1"`` names that first version for good (:data:`MINI_FILES`), whatever ``mini`` becomes.
* ``"auto"`` picks the paper tier when its weights are in the cache and ``mini`` otherwise,
  and says which in one printed line.
* ``"random-ffhq"`` / ``"random-mini"``: the same architectures with fresh random weights
  (paper Fig. 5 (b)(e); benchmarks). A path loads a converted ``.pt`` or an official ``.pkl``.
* **StyleGAN2 tier** — ``"stylegan2-ffhq"`` (FFHQ-1024 faces) and ``"stylegan2-afhqcat"`` (AFHQ
  cats, 512 px): NVIDIA's StyleGAN2(-ADA) generators (:mod:`i2s.stylegan2`), not the paper's, read
  from their pickles without running the code they carry (:mod:`i2s.weights.ada_pickle`,
  :mod:`i2s.weights.tf_stylegan2`). A ``.pkl`` path may be any of NVIDIA's three pickle formats.

Every generator records its **domain** (``G.info["domain"]``, :func:`domain`): what it was trained
on (``"faces"``, ``"cats"``); results carry it, so that a non-face generator's in-domain images
are not counted as faces.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch

from .stylegan import StyleGAN, StyleGANConfig, random_weights
from .stylegan2 import StyleGAN2

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The mini generators shipped in the repository, by the full name they carry. ``mini`` loads
#: :data:`MINI_NAME`; every version stays loadable by its own short name (``mini-v1``).
MINI_FILES = {"mini-faces64": REPO_ROOT / "data" / "models" / "mini-faces64.pt"}
MINI_NAME = "mini-faces64"  # v1, until mini v3 (issue 31) ships
MINI_PATH = MINI_FILES[MINI_NAME]
MINI_CONFIG = StyleGANConfig(resolution=64, fmap_base=1024, fmap_max=128)
#: The generators known by name: the kit's short name (``--model``, folders) -> the full name the
#: generator carries (``G.name``, latent files); a full name's short name is the first that maps
#: to it. ``auto`` picks one of the first two; anything else is a file.
MODEL_NAMES = {"ffhq": "stylegan1-ffhq-1024", "mini": MINI_NAME, "mini-v1": "mini-faces64",
               "random-ffhq": "random-ffhq", "random-mini": "random-mini", "stylegan2-ffhq": "stylegan2-ffhq-1024",
               "stylegan2-afhqcat": "stylegan2-afhqcat-512"}
#: The StyleGAN2 models by short name: (registry checkpoint, domain). Their full names are the
#: checkpoints' names.
STYLEGAN2_MODELS = {"stylegan2-ffhq": ("stylegan2-ffhq-1024", "faces"),
                    "stylegan2-afhqcat": ("stylegan2-afhqcat-512", "cats")}
FFHQ_PICKLE = "karras2019stylegan-ffhq-1024x1024.pkl"


def converted_path(stem: str, sha256: str) -> Path:
    """Where the conversion of a pickle with this sha256 is cached: ``$I2S_HOME/converted/<stem>-<sha256[:16]>.pt``.

    Keyed by the source's hash, so converting some other file that happens to be called
    ``stylegan1-ffhq-1024.pkl`` can never take the place of the paper's generator.
    """
    from .weights.fetch import i2s_home

    return i2s_home() / "converted" / f"{stem}-{sha256[:16]}.pt"


def converted_ffhq_path(sha256: str | None = None) -> Path | None:
    """The cached conversion of the official pickle with ``sha256`` (default: the reference value,
    the registry's confirmed sha256 or the one recorded when the pickle was fetched or imported);
    ``None`` when no reference value is known."""
    from .weights.fetch import reference_sha256

    sha256 = sha256 or reference_sha256("stylegan1-ffhq-1024")
    return None if sha256 is None else converted_path("stylegan1-ffhq-1024", sha256)


def ffhq_available() -> bool:
    """True when the paper's generator can be loaded without a download."""
    from .weights.fetch import weights_dir

    conv = converted_ffhq_path()
    return (conv is not None and conv.is_file()) or (weights_dir() / FFHQ_PICKLE).is_file()


def _cached_conversion(conv: Path | None, sha256: str | None) -> StyleGAN | None:
    """The converted generator at ``conv`` if it is the conversion of the pickle with ``sha256``."""
    from .weights.converted import load_converted

    if conv is None or sha256 is None or not conv.is_file():
        return None
    G = load_converted(conv)
    if G.info.get("source_sha256") == sha256:
        return G
    print(f"[i2s] ignoring {conv}: it is not the conversion of the pickle with sha256 {sha256[:16]}...; "
          "converting again", file=sys.stderr)
    return None


def convert_network_pickle(pkl: Path, **info) -> StyleGAN | StyleGAN2:
    """Convert any of NVIDIA's network pickles: StyleGAN v1 (TF), StyleGAN2 (TF, version 4) or
    StyleGAN2-ADA (PyTorch), chosen by the file's first global (each reader checks the rest).
    ``info`` (``name``, ``tier``, ``domain``) goes to the StyleGAN2 readers."""
    from .weights.ada_pickle import convert_ada_pickle, network_pickle_kind
    from .weights.tf_pickle import convert_pickle
    from .weights.tf_stylegan2 import convert_tf_stylegan2

    kind = network_pickle_kind(pkl)
    if kind == "stylegan2-ada-pytorch":
        return convert_ada_pickle(pkl, **info)
    if kind == "tf-v4":
        return convert_tf_stylegan2(pkl, **info)
    return convert_pickle(pkl)


def _convert_and_cache(pkl: Path, stem: str, **info) -> StyleGAN | StyleGAN2:
    """Convert ``pkl`` and cache the result under its source's sha256 (see :func:`converted_path`)."""
    from .weights.converted import save_converted

    G = convert_network_pickle(pkl, **info)
    out = converted_path(stem, G.info["source_sha256"])
    save_converted(out, G.cfg, G.state_dict(), G.info)
    G.info["path"] = str(out)
    return G


def _load_ffhq() -> StyleGAN:
    """The paper's generator: the cached conversion of the pickle with the reference sha256 (the
    one recorded when it was fetched or imported), else a fresh conversion of the cached pickle."""
    from .weights.fetch import WeightsUnavailable, reference_sha256, weights_dir
    from .weights.tf_pickle import _sha256

    pkl = weights_dir() / FFHQ_PICKLE
    sha = reference_sha256("stylegan1-ffhq-1024")
    if sha is None and pkl.is_file():  # a pickle put there by hand: its hash was never recorded
        sha = _sha256(pkl)
    conv = converted_ffhq_path(sha) if sha else None
    G = _cached_conversion(conv, sha)
    if G is not None:
        return G
    if pkl.is_file():
        print(f"[i2s] converting {pkl} -> {conv} (once)")
        return _convert_and_cache(pkl, "stylegan1-ffhq-1024")
    raise WeightsUnavailable(
        f"the official StyleGAN FFHQ-1024 weights are not in the cache. Run `i2s weights fetch stylegan1-ffhq-1024`, "
        f"or download {FFHQ_PICKLE} yourself and run `i2s weights import stylegan1-ffhq-1024 PATH` "
        f"(it lands in {pkl}). Or use model='mini'.")


def _load_stylegan2(short: str) -> StyleGAN2:
    """A registry StyleGAN2 model: the cached conversion of its pickle (keyed by the pickle's
    reference sha256), else a fresh conversion of the cached pickle."""
    from .weights.fetch import WeightsUnavailable, reference_sha256, weights_dir
    from .weights.registry import get
    from .weights.tf_pickle import _sha256

    full, domain = STYLEGAN2_MODELS[short]
    ckpt = get(full)
    pkl = weights_dir() / ckpt.filename
    sha = reference_sha256(full)
    if sha is None and pkl.is_file():
        sha = _sha256(pkl)
    G = _cached_conversion(converted_path(full, sha) if sha else None, sha)
    if G is None and pkl.is_file():
        print(f"[i2s] converting {pkl} (once)")
        G = _convert_and_cache(pkl, full, name=full, tier="stylegan2", domain=domain)
    if G is None:
        raise WeightsUnavailable(
            f"the StyleGAN2 weights {full} are not in the cache. Run `i2s weights fetch {full}` "
            f"({ckpt.urls[0]}), or download {ckpt.filename} yourself and run `i2s weights import {full} PATH`. "
            "Or use model='mini'.")
    G.info.update(name=full, tier="stylegan2", domain=domain)
    return G  # type: ignore[return-value]


def random_weights_like(G: StyleGAN | StyleGAN2, seed: int = 0) -> StyleGAN | StyleGAN2:
    """``G``'s architecture with fresh random weights (paper Fig. 5 (b)(e)), StyleGAN v1 or StyleGAN2."""
    from .stylegan2 import random_weights as random_weights2

    return random_weights2(G, seed) if isinstance(G, StyleGAN2) else random_weights(G, seed)


def domain(G: StyleGAN | StyleGAN2) -> str:
    """What ``G`` was trained on (``"faces"``, ``"cats"``, ...; ``"unknown"`` when not recorded).
    StyleGAN v1 generators without a record are face models (FFHQ, mini), as the kit always assumed."""
    d = (getattr(G, "info", None) or {}).get("domain")
    return str(d) if d else ("faces" if isinstance(G, StyleGAN) else "unknown")


def load_generator(name_or_path: str | Path = "auto", device: str | torch.device = "cpu",
                   verbose: bool = True) -> StyleGAN | StyleGAN2:
    """Load a generator by name (``auto``, ``ffhq``, ``mini``, ``mini-v1``, ``random-ffhq``, ``random-mini``,
    ``stylegan2-ffhq``, ``stylegan2-afhqcat``) or from a file (converted ``.pt`` or any of NVIDIA's
    ``.pkl`` formats). Returns it in eval mode on ``device``. ``G.info`` records the name, tier and
    domain; a line saying which generator runs is printed."""
    name = str(name_or_path)
    if name == "auto":
        name = "ffhq" if ffhq_available() else "mini"
        if verbose:
            why = "official FFHQ weights found in the cache" if name == "ffhq" else \
                "official FFHQ weights not in the cache (i2s weights fetch stylegan1-ffhq-1024)"
            print(f"[i2s] model=auto -> {name}: {why}")
    name = short_name(name)
    if name == "ffhq":
        G = _load_ffhq()
    elif MODEL_NAMES.get(name) in MINI_FILES:  # mini, mini-v1
        path = MINI_FILES[MODEL_NAMES[name]]
        if not path.is_file():
            raise FileNotFoundError(f"the {name} model is missing: {path}. It ships with the repository; "
                                    "restore it with `git checkout -- data/models/` (git-lfs is not used).")
        from .weights.converted import load_converted

        G = load_converted(path)
    elif name in ("random-ffhq", "random-mini"):
        cfg = StyleGANConfig.ffhq1024() if name == "random-ffhq" else MINI_CONFIG
        G = random_weights(StyleGAN(cfg), seed=0)
        G.info = {"name": name, "tier": "random", "seed": 0}
    elif name in STYLEGAN2_MODELS:
        G = _load_stylegan2(name)
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no generator named {name!r} and no such file; known names: "
                                    f"{', '.join(['auto', *MODEL_NAMES])}")
        if path.suffix == ".pkl":
            from .weights.tf_pickle import _check_file, _sha256

            _check_file(path)
            sha = _sha256(path)
            G = _cached_conversion(converted_path(path.stem, sha), sha) or _convert_and_cache(path, path.stem)
        else:
            from .weights.converted import load_converted

            G = load_converted(path)
    G.info["domain"] = domain(G)
    G = G.to(device).eval().requires_grad_(False)
    if verbose:
        print(f"[i2s] generator: {G.name} ({describe_tier(G)}), {G.resolution}px, {G.num_layers} style layers, "
              f"domain {G.info['domain']}")
    return G


def short_name(G_or_name: "StyleGAN | StyleGAN2 | str") -> str:
    """The kit's short name of a generator or a generator name (``stylegan1-ffhq-1024`` ->
    ``ffhq``, :data:`MODEL_NAMES`), used for folders and CLI choices; other names (a path, a
    custom pickle's) are returned as they are."""
    name = G_or_name if isinstance(G_or_name, str) else G_or_name.name
    return next((short for short, full in MODEL_NAMES.items() if name in (short, full)), name)


def weights_hash(G: StyleGAN | StyleGAN2) -> str:
    """SHA-256 of the generator's parameters and buffers (cached in ``G.info``): which weights ran, in
    cache keys, direction and encoder files."""
    if "weights_sha256" not in G.info:
        h = hashlib.sha256()
        for name, t in sorted(G.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
        G.info["weights_sha256"] = h.hexdigest()
    return G.info["weights_sha256"]


def describe_tier(G: StyleGAN | StyleGAN2) -> str:
    """One phrase naming the tier (and, for mini, how far its training got)."""
    tier = G.info.get("tier", "unknown")
    text = {"paper": "paper tier: official StyleGAN v1 FFHQ-1024",
            "embedded": "embedded tier: our mini model, not the paper's",
            "random": "random weights",
            "stylegan2": "StyleGAN2 tier: NVIDIA's StyleGAN2 weights, not the paper's StyleGAN v1"}.get(tier, f"tier {tier}")
    if tier == "embedded" and "kimg" in G.info:
        text += f", trained on {float(G.info['kimg']):.0f}k images"
        if not G.info.get("fully_grown", True):
            text += f" (interim: only grown to {G.info.get('trained_resolution')} px)"
        elif not G.info.get("finished", True):
            text += f" (interim: training goes on, {float(G.info.get('planned_kimg', 0)):.0f}k planned)"
    return text
