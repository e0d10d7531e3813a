"""Writes notebooks/01…07 from the cell sources below (outputs empty), so the seven notebooks
stay consistent: the same parameters cell (tagged ``parameters`` for papermill), the same
session start, and only calls into ``i2s``. Run after editing: ``python scripts/build_notebooks.py``."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]

PARAMS = '''# Parameters (papermill overrides these)
model = "auto"          # auto | ffhq | mini
profile = "quick"       # quick (mini on a CPU) | paper (5000 steps, for a GPU and the official weights)
steps = None            # None: the profile's number of Algorithm 1 steps
device = "cpu"
seed = 0
figures_dir = "../figures"
results_dir = "../results"
interactive = True      # notebook 05: live sliders (papermill runs pass False: static grids)'''

START = '''import matplotlib.pyplot as plt
import torch
from IPython.display import display

from i2s import experiments as ex

s = ex.Session.start(model=model, profile=profile, steps=steps, device=device, seed=seed,
                     figures_dir=figures_dir, results_dir=results_dir)'''

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_class_embedding": [
        ("md", "# 01 — What images can be embedded? (§3.1, Fig. 1 and Fig. 17)\n\nEvery image of the five "
               "classes (faces, cats, dogs, cars, paintings) embedded into W+ with the paper's algorithm: w̄ "
               "initialisation, the loss of Eq. 1, Adam. Faces are FFHQ-aligned with the generator's framing, "
               "the other classes centre-cropped."),
        ("code", '''df, summary, fig, names, labels, imgs, res = ex.class_embedding(s)
s.save_figure(fig, "fig01_class_embedding")
s.save_table(df, "class_embedding")
s.save_table(summary, "class_embedding_summary")
display(summary)'''),
        ("md", "Per image: the final loss L (paper units: divide by 10^5 for the paper's tables), the "
               "distance ‖w* − w̄‖ to the mean latent, and PSNR."),
        ("code", "display(df)"),
    ],
    "02_affine_robustness": [
        ("md", "# 02 — How robust is the embedding of faces? Affine transformations (§3.2, Fig. 2, Table 1)\n\n"
               "The faces translated (140 px right, 160 px left at 1024 px, scaled to the model), zoomed out and in "
               "2×, rotated by 90° and 180°, each embedded. The paper finds the embedding sensitive to all of them."),
        ("code", '''df, table1, fig = ex.affine_robustness(s)
s.save_figure(fig, "fig02_affine")
s.save_table(df, "affine_per_image")
s.save_table(table1, "table1_affine")
display(table1)'''),
    ],
    "03_defects": [
        ("md", "# 03 — Embedding defective faces (§3.2, Fig. 3, Table 3)\n\nEyes, nose, mouth and their "
               "combinations removed (regions from dlib's landmarks, filled smoothly from their border), then "
               "embedded. The paper finds the embedding robust: features are embedded independently of each other."),
        ("code", '''df, table3, fig = ex.defects(s)
s.save_figure(fig, "fig03_defects")
s.save_table(df, "defects_per_image")
s.save_table(table3, "table3_defects")
display(table3)'''),
    ],
    "04_latent_space_choice": [
        ("md", "# 04 — Which latent space? Which initialisation? (§3.3, §5.1, Fig. 5 / 14, Table 2, Fig. 16)"),
        ("code", '''names, labels, imgs = ex.load_classes(s)
table5, fig5 = ex.latent_space_choice(s, names, labels, imgs)
s.save_figure(fig5, "fig05_latent_space")
s.save_table(table5, "latent_space_choice")
display(table5.groupby("setting", sort=False)[["loss_x1e5", "dist_to_w_avg", "psnr_db"]].mean())'''),
        ("md", "## Table 2: w̄ vs random (U[−1, 1]) initialisation, per class"),
        ("code", '''df2, table2 = ex.init_per_class(s, names, labels, imgs)
s.save_table(df2, "init_per_image")
s.save_table(table2, "table2_init")
display(table2)'''),
        ("md", "## Fig. 16: the same face with different constant noise maps"),
        ("code", '''face = imgs[labels.index("faces")][None]
table16, fig16 = ex.noise_variation(s, face, seeds=range(s.params["noise_seeds"]))
s.save_figure(fig16, "fig16_noise")
s.save_table(table16, "noise_variation")
display(table16)'''),
    ],
    "05_applications": [
        ("md", "# 05 — How meaningful is the embedding? Morphing, style transfer, expression transfer (§4)\n\n"
               "Set `interactive = True` (the default in Jupyter) for sliders; under papermill the same cells "
               "render static grids."),
        ("code", '''names, labels, imgs = ex.load_classes(s)
res = s.embed(imgs)
w = res.w_plus
faces_idx = [i for i, c in enumerate(labels) if c == "faces"]
other_idx = [labels.index(c) for c in dict.fromkeys(labels) if c != "faces"]'''),
        ("md", "## Morphing (§4.1, Fig. 4 / 15): within faces, and across classes"),
        ("code", '''pairs = [(w[faces_idx[k]], w[faces_idx[k + 1]]) for k in range(min(3, len(faces_idx) - 1))]
pairs += [(w[other_idx[0]], w[other_idx[1]]), (w[faces_idx[0]], w[other_idx[-1]])]
rows = ex.morph_rows(s, pairs, frames=7)
from i2s.plots import image_rows
fig = image_rows(list(rows), ["face↔face"] * (len(pairs) - 2) + ["in-class, non-face", "face↔other class"],
                 [f"λ={l:.2f}" for l in torch.linspace(1, 0, 7).tolist()], title="Morphing (Fig. 4)")
s.save_figure(fig, "fig04_morphing")'''),
        ("md", "## Style transfer by crossover (§4.2, Fig. 6 / 8): coarse layers from the content, fine layers from the style"),
        ("code", '''style_names, style_imgs = ex.load_styles(s)
w_style = s.embed(style_imgs).w_plus
grid = ex.crossover_grid(s, w_style, w[faces_idx])
fig = image_rows([torch.cat([style_imgs[k:k+1], grid[k]]) for k in range(len(style_names))],
                 [n.split("/")[-1][:16] for n in style_names], ["style"] + [n.split("/")[-1][:12] for n in (names[i] for i in faces_idx)],
                 title="Style transfer by crossover (Fig. 6)")
s.save_figure(fig, "fig06_style_transfer")
grid8 = ex.crossover_grid(s, w[other_idx], w[faces_idx[:3]])
fig = image_rows(list(grid8), [labels[i] for i in other_idx], None, title="Crossover between classes (Fig. 8)")
s.save_figure(fig, "fig08_crossover_classes")'''),
        ("md", "## Expression transfer (§4.3, Fig. 7): w = w1 + λ·d, d = normalised (w3 − w2) with rows below the threshold zeroed"),
        ("code", '''people, neutral, smiling = ex.load_expression_pairs(s)
wn, wm = s.embed(neutral).w_plus, s.embed(smiling).w_plus
lams = [-3, -1.5, 0, 1.5, 3, 4.5]
rows = ex.expression_rows(s, w[faces_idx], wn[0], wm[0], lams)
fig = image_rows(list(rows), [names[i].split("/")[-1][:14] for i in faces_idx], [f"λ={l}" for l in lams],
                 title=f"Expression transfer from {people[0]} (Fig. 7)")
s.save_figure(fig, "fig07_expression")'''),
        ("md", "## Explore: sliders (live in Jupyter, a static grid under papermill)"),
        ("code", '''from i2s.widgets import explorer
explorer(s, w, labels, names, w_style, style_names, wn, wm, interactive=interactive)'''),
    ],
    "06_pairwise_distances": [
        ("md", "# 06 — Distances between embeddings (Fig. 20)\n\nThe L2 distance between the W+ codes of all "
               "images of the evaluation set, with intra- and inter-class means."),
        ("code", '''names, labels, imgs = ex.load_classes(s)
res = s.embed(imgs)
dist, means, fig = ex.pairwise_distances(names, labels, res.w_plus)
s.save_figure(fig, "fig20_distances")
s.save_table(means, "pairwise_class_means")
display(means.pivot(index="class_a", columns="class_b", values="mean_dist"))'''),
    ],
    "07_embedding_algorithm": [
        ("md", "# 07 — The embedding algorithm (§5): loss ablation (Fig. 9), loss vs. steps (Fig. 10), "
               "iterative embedding (Fig. 11), the resize trick (Fig. 12)"),
        ("code", '''names, labels, imgs = ex.load_classes(s)
table9, fig9 = ex.loss_ablation(s, names, labels, imgs)
s.save_figure(fig9, "fig09_loss_ablation")
s.save_table(table9, "loss_ablation")
display(table9.groupby("variant", sort=False)[["full_loss_x1e5", "psnr_db", "ssim"]].mean())'''),
        ("code", '''table10, fig10 = ex.loss_vs_steps(s, names, labels, imgs)
s.save_figure(fig10, "fig10_loss_vs_steps")
s.save_table(table10, "loss_vs_steps")
display(table10)'''),
        ("code", '''first = [labels.index(c) for c in dict.fromkeys(labels)]
table11, fig11 = ex.iterative_embedding(s, imgs[first], [labels[i] for i in first], times=s.params["iterations"])
s.save_figure(fig11, "fig11_iterative")
s.save_table(table11, "iterative_embedding")
display(table11.pivot(index="iteration", columns="image", values="psnr_vs_original_db"))'''),
        ("code", '''table12, fig12 = ex.resize_trick(s, imgs[first], [labels[i] for i in first])
if fig12 is not None:
    s.save_figure(fig12, "fig12_resize_trick")
    s.save_table(table12, "resize_trick")
    display(table12)'''),
    ],
}


def build() -> list[Path]:
    out = []
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        params = new_code_cell(f"# {name}: papermill parameters\n" + PARAMS)
        params.metadata["tags"] = ["parameters"]
        body = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells]
        nb.cells = [params, body[0], new_code_cell(START)] + body[1:]  # the first cell holds the parameters
        path = REPO / "notebooks" / f"{name}.ipynb"
        path.parent.mkdir(exist_ok=True)
        nbformat.write(nb, path)
        out.append(path)
    return out


if __name__ == "__main__":
    for p in build():
        print(p.relative_to(REPO))
