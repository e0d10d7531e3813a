"""Which generator runs: ``load_generator`` and the two model tiers.

* **Paper tier** — ``"ffhq"`` (alias ``"stylegan1-ffhq-1024"``): NVIDIA's official StyleGAN v1
  FFHQ-1024 weights, fetched once by ``i2s weights fetch stylegan1-ffhq-1024`` and converted
  (without TensorFlow) into the i2s cache.
* **Embedded tier** — ``"mini"``: a 64-px StyleGAN v1 trained by us on 28k face photos and
  shipped in the repository (``data/models/mini-faces64.pt``), so everything runs offline.
* ``"auto"`` picks the paper tier when its weights are in the cache and ``mini`` otherwise,
  and says which in one printed line.
* ``"random-ffhq"`` / ``"random-mini"``: the same architectures with fresh random weights
  (paper Fig. 5 (b)(e); benchmarks). A path loads a converted ``.pt`` or an official ``.pkl``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .stylegan import StyleGAN, StyleGANConfig, random_weights

REPO_ROOT = Path(__file__).resolve().parent.parent
MINI_PATH = REPO_ROOT / "data" / "models" / "mini-faces64.pt"
MINI_CONFIG = StyleGANConfig(resolution=64, fmap_base=1024, fmap_max=128)
FFHQ_NAMES = ("ffhq", "stylegan1-ffhq-1024")
FFHQ_PICKLE = "karras2019stylegan-ffhq-1024x1024.pkl"


def converted_ffhq_path() -> Path:
    """Where the converted official generator is cached (``$I2S_HOME/converted/``)."""
    from .weights.fetch import i2s_home

    return i2s_home() / "converted" / "stylegan1-ffhq-1024.pt"


def ffhq_available() -> bool:
    """True when the paper's generator can be loaded without a download."""
    from .weights.fetch import weights_dir

    return converted_ffhq_path().is_file() or (weights_dir() / FFHQ_PICKLE).is_file()


def _load_ffhq() -> StyleGAN:
    from .weights.converted import load_converted
    from .weights.fetch import WeightsUnavailable, weights_dir

    conv = converted_ffhq_path()
    if conv.is_file():
        return load_converted(conv)
    pkl = weights_dir() / FFHQ_PICKLE
    if pkl.is_file():
        from .weights.tf_pickle import convert_pickle

        print(f"[i2s] converting {pkl} -> {conv} (once)")
        return convert_pickle(pkl, out_path=conv)
    raise WeightsUnavailable(
        f"the official StyleGAN FFHQ-1024 weights are not in the cache. Run `i2s weights fetch stylegan1-ffhq-1024`, "
        f"or download {FFHQ_PICKLE} yourself and run `i2s weights import stylegan1-ffhq-1024 PATH` "
        f"(it lands in {pkl}). Or use model='mini'.")


def load_generator(name_or_path: str | Path = "auto", device: str | torch.device = "cpu",
                   verbose: bool = True) -> StyleGAN:
    """Load a generator by name (``auto``, ``ffhq``, ``mini``, ``random-ffhq``, ``random-mini``)
    or from a file (converted ``.pt`` or official ``.pkl``). Returns it in eval mode on ``device``.
    ``G.info`` records the name and tier; a line saying which generator runs is printed."""
    name = str(name_or_path)
    if name == "auto":
        name = "ffhq" if ffhq_available() else "mini"
        if verbose:
            why = "official FFHQ weights found in the cache" if name == "ffhq" else \
                "official FFHQ weights not in the cache (i2s weights fetch stylegan1-ffhq-1024)"
            print(f"[i2s] model=auto -> {name}: {why}")
    if name in FFHQ_NAMES:
        G = _load_ffhq()
    elif name == "mini":
        if not MINI_PATH.is_file():
            raise FileNotFoundError(f"the mini model is missing: {MINI_PATH}. It ships with the repository; "
                                    "restore it with `git checkout -- data/models/` (git-lfs is not used).")
        from .weights.converted import load_converted

        G = load_converted(MINI_PATH)
    elif name in ("random-ffhq", "random-mini"):
        cfg = StyleGANConfig.ffhq1024() if name == "random-ffhq" else MINI_CONFIG
        G = random_weights(StyleGAN(cfg), seed=0)
        G.info = {"name": name, "tier": "random", "seed": 0}
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no generator named {name!r} and no such file; known names: auto, ffhq, mini, "
                                    "random-ffhq, random-mini")
        if path.suffix == ".pkl":
            from .weights.fetch import i2s_home
            from .weights.tf_pickle import convert_pickle

            G = convert_pickle(path, out_path=i2s_home() / "converted" / f"{path.stem}.pt")
        else:
            from .weights.converted import load_converted

            G = load_converted(path)
    G = G.to(device).eval().requires_grad_(False)
    if verbose:
        print(f"[i2s] generator: {G.name} ({describe_tier(G)}), {G.resolution}px, {G.num_layers} style layers")
    return G


def short_name(G_or_name: "StyleGAN | str") -> str:
    """The kit's short name of a generator (``mini``, ``ffhq``), used for folders and CLI choices;
    other names are returned as they are."""
    name = G_or_name if isinstance(G_or_name, str) else G_or_name.name
    if name in FFHQ_NAMES:
        return "ffhq"
    return {"mini-faces64": "mini"}.get(name, name)


def describe_tier(G: StyleGAN) -> str:
    """One phrase naming the tier (and, for mini, how far its training got)."""
    tier = G.info.get("tier", "unknown")
    text = {"paper": "paper tier: official StyleGAN v1 FFHQ-1024",
            "embedded": "embedded tier: our mini model, not the paper's",
            "random": "random weights"}.get(tier, f"tier {tier}")
    if tier == "embedded" and "kimg" in G.info:
        text += f", trained on {float(G.info['kimg']):.0f}k images"
        if not G.info.get("fully_grown", True):
            text += f" (interim: only grown to {G.info.get('trained_resolution')} px)"
        elif not G.info.get("finished", True):
            text += f" (interim: training goes on, {float(G.info.get('planned_kimg', 0)):.0f}k planned)"
    return text
