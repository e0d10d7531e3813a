"""REPORT.md: verdicts follow the numbers; the expected-output check finds what is missing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from i2s.report import EXPECTED, Verdict, claims, missing_outputs, write_report


def _write(results, name, rows):
    pd.DataFrame(rows).to_csv(results / f"{name}.csv", index=False)


def _faces(n=6):
    return [f"faces/f{i}" for i in range(n)]


def test_verdicts_follow_the_numbers(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for img in _faces():  # W+ clearly lower than W on every image
        rows += [{"image": img, "setting": "(f) W+, w̄ init", "loss_x1e5": 0.2 + 0.01 * rng.random()},
                 {"image": img, "setting": "(c) W, w̄ init", "loss_x1e5": 0.9 + 0.01 * rng.random()}]
    _write(tmp_path, "latent_space_choice", rows)
    ce = [{"image": i, "class": "faces", "dist_to_w_avg": 10 + rng.random(), "loss_x1e5": 0.3 + 0.01 * rng.random()}
          for i in _faces()]
    ce += [{"image": f"cats/c{i}", "class": "cats", "dist_to_w_avg": 30 + rng.random(), "loss_x1e5": 0.2 + 0.01 * rng.random()}
           for i in range(6)]
    _write(tmp_path, "class_embedding", ce)
    _write(tmp_path, "loss_vs_steps", [{"class": "faces", "steps_to_95pct": 300}, {"class": "cars", "steps_to_95pct": 200}])
    verdicts = claims(tmp_path)

    class _V(dict):
        def __getitem__(self, prefix):
            return next(c for c in verdicts if c.claim.startswith(prefix))

    v = _V()
    w = v["Embedding into W+ beats W"]
    assert w.verdict == "agrees" and w.comparison.n_images == 6 and w.comparison.high < 0
    assert v["Faces embed close to w̄; other classes scatter further"].verdict == "agrees"
    assert v["Faces embed better (lower loss) than the other classes"].verdict == "disagrees"
    assert v["The loss converges fastest for faces"].verdict == "inconclusive"  # one curve per class
    assert v["w̄ init is better for faces"].verdict == "not run"
    _write(tmp_path, "table1_affine", [{"transform": "original", "ours_loss_x1e5": 0.1, "paper_loss_x1e5": None},
                                       {"transform": "rotate_90", "ours_loss_x1e5": 0.5, "paper_loss_x1e5": 0.622}])
    text = write_report(tmp_path).read_text()
    assert "Table 1" in text and "0.622" in text and "**agrees**" in text and "**disagrees**" in text
    assert "95 % interval" in text and "Rule:" in text


def test_missing_outputs(tmp_path):
    figs, res = tmp_path / "f", tmp_path / "r"
    figs.mkdir()
    res.mkdir()
    n = sum(len(e["figures"]) + len(e["tables"]) for e in EXPECTED.values())
    assert len(missing_outputs(figs, res)) == n
    (figs / "fig01_class_embedding.png").write_bytes(b"x")
    assert len(missing_outputs(figs, res)) == n - 1


def test_run_times_in_the_report(tmp_path):
    assert "Run time" not in write_report(tmp_path).read_text()
    pd.DataFrame({"notebook": ["01_class_embedding", "02_affine_robustness"], "seconds": [90.0, 30.0],
                  "steps": ["profile", "profile"], "device": ["cpu: test, 2 threads"] * 2}).to_csv(
        tmp_path / "run_times.csv", index=False)
    text = write_report(tmp_path).read_text()
    assert "## Run time" in text and "2.0 minutes for the 2 notebooks" in text and "cpu: test" in text


def test_hairs_breadth_margins_are_inconclusive_clear_ones_decided(tmp_path):
    """The old rule called 0.4321 vs 0.4318 a win; the interval over the images does not."""
    def verdict(prefix):
        return next(c for c in claims(tmp_path) if c.claim.startswith(prefix)).verdict

    rng = np.random.default_rng(1)

    def ablation(full_shift):
        rows = []
        for img in _faces(8):
            base = 0.43 + 0.05 * rng.standard_normal()
            rows += [{"image": img, "variant": "full", "ssim": base + full_shift + 0.002 * rng.standard_normal()},
                     {"image": img, "variant": "mse", "ssim": base - 0.01},
                     {"image": img, "variant": "perceptual", "ssim": base + 0.002 * rng.standard_normal()}]
        return rows

    _write(tmp_path, "loss_ablation", ablation(0.0))
    assert verdict("The full loss") == "inconclusive"
    _write(tmp_path, "loss_ablation", ablation(0.03))
    assert verdict("The full loss") == "agrees"
    _write(tmp_path, "loss_ablation", ablation(-0.03))
    assert verdict("The full loss") == "disagrees"

    def defects(shift):
        rows = []
        for img in _faces(6):
            d0 = 18 + rng.random()
            rows.append({"image": img, "defect": "non-defective", "dist_to_w_avg": d0})
            rows += [{"image": img, "defect": k, "dist_to_w_avg": d0 + shift + 0.1 * rng.standard_normal()}
                     for k in ("eyes", "mouth")]
        return rows

    _write(tmp_path, "defects_per_image", defects(0.0))
    assert verdict("Defective faces embed farther") == "inconclusive"
    _write(tmp_path, "defects_per_image", defects(1.0))
    assert verdict("Defective faces embed farther") == "agrees"
    _write(tmp_path, "defects_per_image", defects(-1.0))
    assert verdict("Defective faces embed farther") == "disagrees"


def test_expected_outputs_come_from_the_named_results(tmp_path):
    """Saving one of each notebook's results writes exactly the files the check expects."""
    from dataclasses import fields

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from i2s.experiments import NOTEBOOK_RESULTS, ResizeTrick, expected_outputs

    assert EXPECTED == expected_outputs()
    figs, res = tmp_path / "f", tmp_path / "r"
    figs.mkdir()
    res.mkdir()

    class Session:  # what Result.save needs of i2s.experiments.Session
        def save_figure(self, fig, name):
            fig.savefig(figs / f"{name}.png")
            return figs / f"{name}.png"

        def save_table(self, df, name):
            df.to_csv(res / f"{name}.csv", index=False)
            return res / f"{name}.csv"

    written = []
    for results in NOTEBOOK_RESULTS.values():
        for cls in results:
            if cls is ResizeTrick:  # optional outputs: None below 256 px, nothing written
                assert cls(None, None).save(Session()) == []
                continue
            kinds = {name: kind for name, kind, _ in cls.outputs()}
            values = {f.name: (plt.figure() if kinds.get(f.name) == "figure" else
                               pd.DataFrame({"x": [1]}) if kinds.get(f.name) == "table" else None) for f in fields(cls)}
            written += cls(**values).save(Session())
    plt.close("all")
    assert missing_outputs(figs, res) == []
    assert sorted(p.stem for p in written) == sorted(n for e in EXPECTED.values() for n in e["figures"] + e["tables"])


def test_committed_outputs_carry_the_expected_names():
    from conftest import REPO

    assert missing_outputs(REPO / "figures" / "mini", REPO / "results" / "mini" / "quick") == []


def test_loss_vs_steps_measures_every_image_and_draws_the_spread():
    """Fig. 10 from every image: one row per image, and per class a median line with a band."""
    from types import SimpleNamespace

    import torch
    from matplotlib.collections import PolyCollection

    from i2s import experiments as ex

    steps = np.arange(1, 51, dtype=float)
    fast = [1e5 * (1 + 9 * np.exp(-steps / k)) for k in (2, 3, 4)]    # faces: converge in a few steps
    slow = [1e5 * (1 + 9 * np.exp(-steps / k)) for k in (10, 12)]     # cars: later
    curve = torch.tensor(np.stack(fast + slow, 1))
    s = SimpleNamespace(params={"curve_steps": 50}, embed=lambda x, steps: SimpleNamespace(loss_curve=curve))
    names = [f"faces/f{i}" for i in range(3)] + ["cars/c0", "cars/c1"]
    out = ex.loss_vs_steps(s, names, ["faces"] * 3 + ["cars"] * 2, torch.zeros(5, 3, 8, 8))
    t = out.table.set_index("image")
    assert list(t.index) == names
    assert t.loc["faces/f0", "steps_to_95pct"] < t.loc["faces/f2", "steps_to_95pct"] < t.loc["cars/c0", "steps_to_95pct"]
    ax = out.figure.axes[0]
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 2  # one band per class
    assert {x.get_text() for x in ax.get_legend().get_texts()} == {"faces (n = 3)", "cars (n = 2)"}


def test_random_init_seeds_count_once_per_image(tmp_path):
    """Table 2's claims with 3 seeds of the random start: each image is one unit (its seeds'
    mean), so 3 seeds never triple n, and the verdict follows the per-image means."""
    rows = []
    for i in range(5):
        rows.append({"image": f"cats/c{i}", "class": "cats", "init": "mean", "seed": 0, "loss_x1e5": 1.0})
        for seed, loss in zip((0, 1, 2), (0.5, 0.6, 1.2)):  # one seed worse than w̄, the mean better
            rows.append({"image": f"cats/c{i}", "class": "cats", "init": "uniform", "seed": seed, "loss_x1e5": loss + 0.01 * i})
    _write(tmp_path, "init_per_image", rows)
    v = next(c for c in claims(tmp_path) if c.claim.startswith("Random init is better for non-faces"))
    assert v.comparison.n_images == 5 and v.comparison.n_pairs == 5
    assert v.verdict == "agrees" and np.isclose(v.comparison.effect, (0.5 + 0.6 + 1.2) / 3 + 0.02 - 1.0)
    assert "mean of 3 seeds per image" in v.evidence


def test_zoom_explanation_rows_follow_the_numbers(tmp_path):
    """The framing-vs-detail test of the zoom-in: each input against the original, per face."""
    from i2s.report import explanations

    rows = []
    for i in range(6):
        f = f"faces/f{i}"
        base = 1.0 + 0.05 * i
        rows += [{"image": f, "input": "original", "loss_x1e5": base},
                 {"image": f, "input": "zoom_in_2x", "loss_x1e5": base - 0.3 + 0.01 * i},
                 {"image": f, "input": "framed_2x_closer", "loss_x1e5": base + 0.2 + 0.01 * i},   # framing: worse
                 {"image": f, "input": "blurred_2x", "loss_x1e5": base - 0.25 - 0.01 * i}]        # blur: better
    _write(tmp_path, "zoom_explanation", rows)
    v = {e.evidence.split(" minus")[0].split("of ")[1]: e.verdict for e in explanations(tmp_path)}
    assert v == {"zoom_in_2x": "agrees", "framed_2x_closer": "disagrees", "blurred_2x": "agrees"}
    assert explanations(tmp_path / "nothing") == []
    report = write_report(tmp_path).read_text()
    assert "## Explanations tested" in report and "the detail alone" in report


def test_defects_explanation_asks_whether_defective_faces_are_easier_to_fit(tmp_path):
    """Table 3's explanation row: a defective face's loss against its intact face's, per face."""
    from i2s.report import explanations

    def rows(sign):
        out = []
        for i in range(6):
            f, base = f"faces/f{i}", 1.0 + 0.1 * i
            out.append({"image": f, "defect": "non-defective", "loss_x1e5": base, "dist_to_w_avg": 30.0})
            for k, defect in enumerate(("eyes", "mouth")):
                out.append({"image": f, "defect": defect, "loss_x1e5": base + sign * (0.2 + 0.01 * (i + k)),
                            "dist_to_w_avg": 30.0})
        return out

    for sign, verdict in ((-1, "agrees"), (+1, "disagrees")):
        _write(tmp_path, "defects_per_image", rows(sign))
        v = [e for e in explanations(tmp_path) if e.claim.startswith("Defective faces embed with a lower loss")]
        assert len(v) == 1 and v[0].verdict == verdict and v[0].comparison.n_images == 6
        assert v[0].comparison.n_pairs == 12 and np.sign(v[0].comparison.effect) == sign


def test_sensitivity_lists_every_claim_under_every_run(tmp_path):
    """With a second results folder beside this one, REPORT.md gains one column per run."""
    from i2s.report import sensitivity

    def run(folder, gap):
        folder.mkdir(parents=True)
        ce = [{"image": f"faces/f{i}", "class": "faces", "dist_to_w_avg": 10.0 + i, "loss_x1e5": 0.3,
               "model": "mini", "profile": folder.name, "perceptual_net": "vgg16-random"} for i in range(5)]
        ce += [{"image": f"cats/c{i}", "class": "cats", "dist_to_w_avg": 10.0 + i + gap, "loss_x1e5": 0.5,
                "model": "mini", "profile": folder.name, "perceptual_net": "vgg16-random"} for i in range(5)]
        _write(folder, "class_embedding", ce)

    quick, full = tmp_path / "mini" / "quick", tmp_path / "mini" / "full"
    run(quick, gap=0.0)
    assert sensitivity(quick) is None                       # alone: nothing to compare
    run(full, gap=20.0)
    t = sensitivity(quick).set_index("claim")
    assert list(t.columns) == ["mini · quick · vgg16-random", "mini · full · vgg16-random"]
    near = t.loc["Faces embed close to w̄; other classes scatter further (§5.1)"]
    assert near.iloc[0].startswith("inconclusive") and near.iloc[1].startswith("agrees (-20")
    assert t.loc["Embedding into W+ beats W (§3.3, Fig. 5)"].tolist() == ["not run", "not run"]
    assert "## Sensitivity" in write_report(quick).read_text()


def test_a_folder_with_one_notebooks_tables_joins_the_sensitivity_table(tmp_path):
    """A run of one notebook (the paper profile's 03 on the disputed claims) has no
    class_embedding.csv: it still gets a column, labelled from the tag of the CSVs it has."""
    from i2s.report import sensitivity

    quick, paper = tmp_path / "mini" / "quick", tmp_path / "mini" / "paper"
    quick.mkdir(parents=True)
    paper.mkdir(parents=True)
    tag = {"model": "mini", "tier": "embedded", "perceptual_net": "vgg16-random"}
    _write(quick, "class_embedding", [{"image": f"faces/f{i}", "class": "faces", "dist_to_w_avg": 1.0, "loss_x1e5": 0.3,
                                       **tag, "profile": "quick"} for i in range(3)])
    rows = []
    for i in range(5):
        rows.append({"image": f"faces/f{i}", "defect": "non-defective", "dist_to_w_avg": 10.0, "loss_x1e5": 0.3, **tag, "profile": "paper"})
        rows.append({"image": f"faces/f{i}", "defect": "no eyes", "dist_to_w_avg": 12.0 + 0.1 * i, "loss_x1e5": 0.2, **tag,
                     "profile": "paper"})
    _write(paper, "defects_per_image", rows)
    t = sensitivity(quick).set_index("claim")
    assert list(t.columns) == ["mini · quick · vgg16-random", "mini · paper · vgg16-random"]
    assert t.loc["Defective faces embed farther from w̄ than intact ones (supp., Table 3)"].tolist()[1].startswith("agrees")
    assert "Generator `mini` (embedded tier)" in write_report(paper).read_text()


def test_expression_and_crossover_claims_follow_the_numbers(tmp_path):
    """Fig. 7's claim from expression_smile.csv (one-pair sources, λ > 0 against λ = 0, the
    mean-of-others rows not mixed in) and Fig. 6's from crossover_measures.csv (default split)."""
    rows = []
    for s in range(4):
        for t in range(4):
            if s != t:
                for lam in (0.0, 0.5, 1.0):
                    rows.append({"source": f"p{s}", "target": f"p{t}", "lam": lam, "identity_distance": 0.1,
                                 "smile_ratio": 0.8 + 0.01 * t + 0.05 * lam + 0.001 * s, "source_kind": "one pair (§4.3)",
                                 "rule": "relative", "threshold": 0.5})
        for lam in (0.0, 1.0):  # the average source narrows smiles: must not change the one-pair verdict
            rows.append({"source": "mean", "target": f"p{s}", "lam": lam, "identity_distance": 0.1,
                         "smile_ratio": 0.8 - 0.5 * lam, "source_kind": "mean of the other pairs",
                         "rule": "relative", "threshold": 0.5})
    _write(tmp_path, "expression_smile", rows)
    cross = [{"content": f"faces/f{i}", "style": f"style/s{j}", "split_layer": k, "default_split": k == 5,
              "same_person": False, "colour_to_style": 10.0 + i + j, "colour_content_to_style": 50.0 + j}
             for i in range(4) for j in range(3) for k in (3, 5)]
    _write(tmp_path, "crossover_measures", cross)
    v = {c.claim.split(" (")[0]: c for c in claims(tmp_path)}
    smile = v["Expression transfer makes other people smile"]
    assert smile.verdict == "agrees" and smile.comparison.n_pairs == 12 and smile.comparison.n_images == 4
    assert abs(smile.comparison.effect - 0.0375) < 1e-9 and "relative threshold 0.5" in smile.evidence
    colour = v["Crossover takes the style image's colours and textures"]
    assert colour.verdict == "agrees" and colour.comparison.n_pairs == 12 and "0 of 12" in colour.evidence
    rows = [{**r, "smile_ratio": 0.8 + 0.01 * int(r["target"][1])} for r in rows]  # no change at all
    _write(tmp_path, "expression_smile", rows)
    smile = next(c for c in claims(tmp_path) if c.claim.startswith("Expression"))
    assert smile.verdict == "inconclusive"


def test_morph_claim_compares_face_morphs_with_morphs_that_have_a_non_face_end(tmp_path):
    """§4.1's claim from morph_smoothness.csv: face ↔ face morphs against morphs with a non-face
    end, by max / mean frame change; fewer than three morphs a side is inconclusive by the rule."""
    def rows(face_ratio: float, other_ratio: float, n_other: int) -> list[dict]:
        out = [{"morph": f"faces/a{i} → faces/b{i}", "max_over_mean": face_ratio + 0.01 * i} for i in range(4)]
        out += [{"morph": f"faces/a{i} → cats/c{i}" if i % 2 else f"cats/c{i} → dogs/d{i}",
                 "max_over_mean": other_ratio + 0.01 * i} for i in range(n_other)]
        return out

    def verdict() -> Verdict:
        return next(c for c in claims(tmp_path) if c.claim.startswith("Morphs between faces"))

    _write(tmp_path, "morph_smoothness", rows(1.1, 1.8, 4))
    v = verdict()
    assert v.verdict == "agrees" and abs(v.comparison.effect - (-0.7)) < 1e-9 and "4 and 4 morphs" in v.evidence
    _write(tmp_path, "morph_smoothness", rows(1.8, 1.1, 4))
    assert verdict().verdict == "disagrees"
    _write(tmp_path, "morph_smoothness", rows(1.1, 1.8, 2))
    assert verdict().verdict == "inconclusive"
