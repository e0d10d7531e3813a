"""Writes notebooks/01…07 from the cell sources below (outputs empty), so the seven notebooks
stay consistent: the same parameters cell (tagged ``parameters`` for papermill), the same
session start, and only calls into ``i2s``. Run after editing: ``python scripts/build_notebooks.py``.

The output is deterministic: cell ids come from the notebook's name and the cell's position,
so a rebuild without edits rewrites every file byte for byte (tests/test_build_notebooks.py
checks that the committed notebooks are what this script writes). ``--out DIR`` writes
elsewhere; ``--check`` only reports notebooks that differ from a rebuild.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]

PARAMS = '''# Parameters (papermill overrides these)
model = "auto"          # auto | ffhq | mini
profile = "quick"       # quick (mini on a CPU) | paper (5000 steps, for a GPU and the official weights)
steps = None            # None: the profile's number of Algorithm 1 steps
device = "cpu"
perceptual = "auto"     # auto (ImageNet VGG-16 when cached, else vgg16-random) | efficientnet-lite0
seed = 0
# Run by hand, a notebook writes under runs/<model>/ (git-ignored): figures in runs/<model>/, tables in
# runs/<model>/<profile>/. Only `make reproduce` (scripts/run_notebooks.py) passes the committed
# folders ../figures and ../results.
figures_dir = "../runs"
results_dir = "../runs"
interactive = True      # notebook 05: live sliders (papermill runs pass False: static grids)'''

START = '''import matplotlib.pyplot as plt
import torch
from IPython.display import display

from i2s import experiments as ex

s = ex.Session.start(model=model, profile=profile, steps=steps, device=device, seed=seed,
                     figures_dir=figures_dir, results_dir=results_dir, perceptual=perceptual)'''

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_class_embedding": [
        ("md", "# 01 — What images can be embedded? (§3.1, Fig. 1 and Fig. 17)\n\nEvery image of the five "
               "classes (faces, cats, dogs, cars, paintings) embedded into W+ with the paper's algorithm: w̄ "
               "initialisation, the loss of Eq. 1, Adam. Faces are FFHQ-aligned with the generator's framing, "
               "the other classes centre-cropped."),
        ("code", '''classes = ex.class_embedding(s)
classes.save(s)
display(classes.summary)'''),
        ("md", "Per image: the final loss L (paper units: divide by 10^5 for the paper's tables), the "
               "distance ‖w* − w̄‖ to the mean latent, and PSNR."),
        ("code", "display(classes.per_image)"),
    ],
    "02_affine_robustness": [
        ("md", "# 02 — How robust is the embedding of faces? Affine transformations (§3.2, Fig. 2, Table 1)\n\n"
               "The faces translated (140 px right, 160 px left at 1024 px, scaled to the model), zoomed out and in "
               "2×, rotated by 90° and 180°, each embedded. The paper finds the embedding sensitive to all of them."),
        ("code", '''affine = ex.affine_robustness(s)
affine.save(s)
display(affine.table1)'''),
        ("md", "## Zoom-in taken apart\n\nWhere the zoom-in embeds *better* than the original (mini), is it the closer "
               "framing or the halved detail? The same photos aligned 2× closer (full detail), and the originals "
               "blurred 2× (same framing), embedded alike; REPORT.md decides it under *Explanations tested*."),
        ("code", '''zoom = ex.zoom_explanation(s)
zoom.save(s)
display(zoom.per_image.groupby("input", sort=False)[["loss_x1e5", "psnr_db", "dist_to_w_avg"]].mean())'''),
    ],
    "03_defects": [
        ("md", "# 03 — Embedding defective faces (§3.2, Fig. 3, Table 3)\n\nEyes, nose, mouth and their "
               "combinations removed (regions from dlib's landmarks, filled smoothly from their border), then "
               "embedded. The paper finds the embedding robust: features are embedded independently of each other."),
        ("code", '''defects = ex.defects(s)
defects.save(s)
display(defects.table3)'''),
    ],
    "04_latent_space_choice": [
        ("md", "# 04 — Which latent space? Which initialisation? (§3.3, §5.1, Fig. 5 / 14, Table 2, Fig. 16)"),
        ("code", '''names, labels, imgs = ex.load_classes(s)
space = ex.latent_space_choice(s, names, labels, imgs)
space.save(s)
display(space.by_setting)'''),
        ("md", "## Table 2: w̄ vs random (U[−1, 1]) initialisation, per class"),
        ("code", '''init = ex.init_per_class(s, names, labels, imgs)
init.save(s)
display(init.table2)'''),
        ("md", "## Fig. 16: the same face with different constant noise maps"),
        ("code", '''face = imgs[labels.index("faces")][None]
noise = ex.noise_variation(s, face, seeds=range(s.params["noise_seeds"]))
noise.save(s)
display(noise.table)'''),
    ],
    "05_applications": [
        ("md", "# 05 — How meaningful is the embedding? Morphing, style transfer, expression transfer (§4)\n\n"
               "Set `interactive = True` (the default in Jupyter) for sliders; under papermill the same cells "
               "render static grids."),
        ("code", "codes = ex.embed_classes(s)  # every image of the evaluation set in W+"),
        ("md", "## Morphing (§4.1, Fig. 4 / 15): within faces, and across classes"),
        ("code", '''morphs = ex.morphing(s, codes)
morphs.save(s)
display(morphs.smoothness)  # frame-to-frame pixel RMS change: max / mean near 1 is a smooth morph'''),
        ("md", "## Style transfer by crossover (§4.2, Fig. 6 / 8): coarse layers from the content, fine layers from the style"),
        ("code", '''styles = ex.style_transfer(s, codes)
styles.save(s)
display(styles.by_split)  # identity distance to the content (< 0.6: same person), colour distance to the style'''),
        ("md", "## Expression transfer (§4.3, Fig. 7): w = w1 + λ·d, d = w3 − w2 with rows below the threshold zeroed\n\n"
               "λ = 1 moves the target as far as the source moved from neutral to smiling. The paper tier keeps the "
               "paper's absolute threshold (1.0); other tiers keep the rows whose norm is at least half the mean row "
               "norm (`ex.expression_rule`). Measured: each neutral/smiling pair applied to the other people's neutral "
               "faces (the paper's protocol), and the mean of the other pairs (ours), the smile ratio (mouth width / "
               "eye distance, dlib landmarks) against λ = 0."),
        ("code", '''expressions = ex.expression_editing(s, codes)
expressions.save(s)
display(expressions.smile_summary)  # Δ smile ratio per λ: mean, spread, 95 % interval, verdict'''),
        ("md", "## Directions found from the generator alone (SeFa; not in the paper)\n\n"
               "The strongest directions of the style affines (Shen & Zhou 2021), applied to an embedded face "
               "in standard deviations of w. `i2s edit PHOTO --direction K` does the same from the command line."),
        ("code", '''directions = ex.latent_directions(s, codes)
directions.save(s)
display(directions.table)'''),
        ("md", "## Explore: sliders (live in Jupyter, a static grid under papermill)"),
        ("code", "ex.explore(s, codes, styles, expressions, interactive=interactive)"),
    ],
    "06_pairwise_distances": [
        ("md", "# 06 — Distances between embeddings (Fig. 20)\n\nThe L2 distance between the W+ codes of all "
               "images of the evaluation set, with intra- and inter-class means."),
        ("code", '''names, labels, imgs = ex.load_classes(s)
res = s.embed(imgs)
distances = ex.pairwise_distances(names, labels, res.w_plus)
distances.save(s)
display(distances.class_matrix)'''),
    ],
    "07_embedding_algorithm": [
        ("md", "# 07 — The embedding algorithm (§5): loss ablation (Fig. 9), loss vs. steps (Fig. 10), "
               "iterative embedding (Fig. 11), the resize trick (Fig. 12)"),
        ("code", '''names, labels, imgs = ex.load_classes(s)
ablation = ex.loss_ablation(s, names, labels, imgs)
ablation.save(s)
display(ablation.by_variant)'''),
        ("code", '''curves = ex.loss_vs_steps(s, names, labels, imgs)
curves.save(s)
display(curves.table)'''),
        ("code", '''first = ex.first_of_each_class(labels)
iterative = ex.iterative_embedding(s, imgs[first], [labels[i] for i in first], times=s.params["iterations"])
iterative.save(s)
display(iterative.psnr_by_iteration)'''),
        ("code", '''resize = ex.resize_trick(s, imgs[first], [labels[i] for i in first])
resize.save(s)  # nothing to save (or show) at or below 256 px
if resize.table is not None:
    display(resize.table)'''),
    ],
}


def cell_id(name: str, index: int) -> str:
    """A stable cell id (nbformat 4.5: 1-64 letters, digits, ``-`` or ``_``): the notebook's
    name and the cell's position, e.g. ``05_applications-03``."""
    return f"{name}-{index:02d}"


def notebook(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` of :data:`NOTEBOOKS`: parameters, title, session start, then its cells."""
    cells = NOTEBOOKS[name]
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell(f"# {name}: papermill parameters\n" + PARAMS)
    params.metadata["tags"] = ["parameters"]
    body = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells]
    nb.cells = [params, body[0], new_code_cell(START)] + body[1:]  # the first cell holds the parameters
    for k, cell in enumerate(nb.cells):
        cell.id = cell_id(name, k)
    nbformat.validate(nb)
    return nb


def render(name: str) -> bytes:
    """The bytes of ``notebooks/<name>.ipynb`` (what ``nbformat.write`` writes: JSON, one-space
    indent, sorted keys, a final newline)."""
    text = nbformat.writes(notebook(name))
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def build(out: Path = REPO / "notebooks") -> list[Path]:
    """Write every notebook into ``out``; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in NOTEBOOKS:
        path = out / f"{name}.ipynb"
        path.write_bytes(render(name))
        paths.append(path)
    return paths


def stale(notebooks: Path = REPO / "notebooks") -> list[Path]:
    """The notebooks in ``notebooks`` that are missing or differ from a rebuild."""
    paths = [Path(notebooks) / f"{name}.ipynb" for name in NOTEBOOKS]
    return [p for p, name in zip(paths, NOTEBOOKS) if not p.is_file() or p.read_bytes() != render(name)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "notebooks", help="folder to write the notebooks into")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook in --out is stale")
    args = ap.parse_args(argv)
    if args.check:
        for p in stale(args.out):
            print(f"stale: {p} (run python scripts/build_notebooks.py)", file=sys.stderr)
        return 1 if stale(args.out) else 0
    for p in build(args.out):
        print(p.relative_to(REPO) if p.is_relative_to(REPO) else p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
