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

    assert missing_outputs(REPO / "figures" / "mini" / "quick", REPO / "results" / "mini" / "quick") == []
    assert missing_outputs(REPO / "figures" / "mini", REPO / "results" / "mini" / "full") == []


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


def _smile_rows(identity: float = 0.1, face_score: float = 1.0) -> list[dict]:
    rows = []
    for s in range(4):
        for t in range(4):
            if s != t:
                for lam in (-1.0, 0.0, 0.5, 1.0):
                    rows.append({"source": f"p{s}", "target": f"p{t}", "lam": lam,
                                 "identity_distance": 0.0 if lam == 0 else identity + 0.01 * s, "face_score": face_score,
                                 "smile_ratio": 0.8 + 0.01 * t + 0.05 * lam + 0.001 * s, "source_kind": "one pair (§4.3)",
                                 "rule": "relative", "threshold": 0.5})
        for lam in (0.0, 1.0):  # the average source narrows smiles: must not change the one-pair verdict
            rows.append({"source": "mean", "target": f"p{s}", "lam": lam, "identity_distance": 0.1, "face_score": 1.0,
                         "smile_ratio": 0.8 - 0.5 * lam, "source_kind": "mean of the other pairs",
                         "rule": "relative", "threshold": 0.5})
    return rows


def _cross_rows(identity: float, face_score: float = 1.0) -> list[dict]:
    return [{"content": f"faces/f{i}", "style": f"style/s{j}", "split_layer": k, "default_split": k == 5,
             "content_layers": f"0-{k - 1} of 10", "identity_to_content": identity + 0.01 * j, "face_score": face_score,
             "colour_to_style": 10.0 + i + j, "colour_content_to_style": 50.0 + j}
            for i in range(4) for j in range(3) for k in (3, 5)]


def test_expression_and_crossover_claims_need_both_halves(tmp_path):
    """Fig. 7's and Fig. 6's claims: the edit half (smile ratio against λ = 0, one-pair sources
    only; colour distance to the style against the content's) *and* the kept half (share of
    outputs still the person: detected, identity < 0.6). An edit that works on faces it lost
    is not 'agrees'."""
    def by_name():
        return {c.claim.split(" (")[0] + (" <0" if "λ < 0" in c.claim else ""): c for c in claims(tmp_path)}

    _write(tmp_path, "expression_smile", _smile_rows(identity=0.2))
    _write(tmp_path, "crossover_measures", _cross_rows(identity=0.3))
    v = by_name()
    up, down = v["Expression transfer moves the smile up and keeps the person"], \
        v["Expression transfer moves the smile down and keeps the person <0"]
    assert up.verdict == "agrees" and down.verdict == "agrees"
    edit, kept = up.halves
    assert edit.comparison.n_pairs == 12 and edit.comparison.n_images == 4 and abs(edit.comparison.effect - 0.0375) < 1e-9
    assert kept.verdict == "agrees" and kept.comparison.wins == 12
    cross = v["Crossover takes the style's colours and keeps the content's face"]
    assert cross.verdict == "agrees" and "layers 0-4 of 10" in cross.claim and cross.halves[0].comparison.n_pairs == 12

    # the edit half still agrees, but the faces are other people (identity 0.9) or gone (no detection)
    _write(tmp_path, "expression_smile", _smile_rows(identity=0.9))
    _write(tmp_path, "crossover_measures", _cross_rows(identity=0.3, face_score=-0.5))
    v = by_name()
    up = v["Expression transfer moves the smile up and keeps the person"]
    assert up.halves[0].verdict == "agrees" and up.halves[1].verdict == "disagrees" and up.verdict == "disagrees"
    cross = v["Crossover takes the style's colours and keeps the content's face"]
    assert cross.halves[0].verdict == "agrees" and cross.halves[1].verdict == "disagrees"
    assert cross.verdict == "disagrees"
    report = write_report(tmp_path).read_text()
    assert "↳ kept half" in report and "## §4 in detail" in report and "λ = 0.5" in report

    # no change of the smile at all: the edit half cannot agree
    _write(tmp_path, "expression_smile", [{**r, "smile_ratio": 0.8 + 0.01 * int(r["target"][1])} for r in _smile_rows()])
    assert by_name()["Expression transfer moves the smile up and keeps the person"].verdict == "inconclusive"


def test_the_lambda_range_where_both_halves_hold(tmp_path):
    from i2s.experiments import lams_where_both_hold

    rows = _smile_rows(identity=0.2)
    rows = [{**r, "identity_distance": 0.9} if r["lam"] == 1.0 else r for r in rows]  # λ = 1 loses the person
    assert lams_where_both_hold(pd.DataFrame(rows)) == [-1.0, 0.5]


def test_morph_claim_compares_face_morphs_with_morphs_that_have_a_non_face_end(tmp_path):
    """§4.1's claim from morph_smoothness.csv: face ↔ face morphs against morphs with a non-face
    end, by max / mean frame change; fewer than three morphs a side is inconclusive by the rule."""
    def rows(face_ratio: float, other_ratio: float, n_other: int) -> list[dict]:
        out = [{"morph": f"faces/a{i} → faces/b{i}", "max_over_mean": face_ratio + 0.01 * i} for i in range(4)]
        out += [{"morph": f"faces/a{i} → cats/c{i}" if i % 2 else f"cats/c{i} → dogs/d{i}",
                 "max_over_mean": other_ratio + 0.01 * i} for i in range(n_other)]
        return out

    def verdict() -> Verdict:
        return next(c for c in claims(tmp_path) if c.claim.startswith("Morphs between faces are smooth"))

    _write(tmp_path, "morph_smoothness", rows(1.1, 1.8, 4))
    v = verdict()
    assert v.verdict == "agrees" and abs(v.comparison.effect - (-0.7)) < 1e-9 and "4 and 4 morphs" in v.evidence
    _write(tmp_path, "morph_smoothness", rows(1.8, 1.1, 4))
    assert verdict().verdict == "disagrees"
    _write(tmp_path, "morph_smoothness", rows(1.1, 1.8, 2))
    assert verdict().verdict == "inconclusive"


def test_morph_face_claims_follow_the_numbers(tmp_path):
    """§4.1: face ↔ face morphs stay faces between the ends (share of kept frames per morph
    against 0.5); morphs between non-faces show face contours (intermediate face score above
    the ends')."""
    def rows(kept: float, contour: float) -> list[dict]:
        out = [{"morph": f"faces/a{i} → faces/b{i}", "max_over_mean": 1.1, "kept_between": kept + 0.01 * i,
                "mid_face_score": 0.5, "ends_face_score": 0.6} for i in range(5)]
        out += [{"morph": f"cats/c{i} → dogs/d{i}", "max_over_mean": 1.5, "kept_between": 0.0,
                 "mid_face_score": -1.0 + contour + 0.02 * i, "ends_face_score": -1.0} for i in range(5)]
        return out

    def verdicts() -> dict[str, str]:
        return {c.claim.split(":")[0].split(" (")[0]: c.verdict for c in claims(tmp_path) if c.claim.startswith("Morphs")}

    _write(tmp_path, "morph_smoothness", rows(kept=0.9, contour=0.3))
    v = verdicts()
    assert v["Morphs between faces stay faces"] == "agrees"
    assert v["Morphs between non-faces show contours of faces in between"] == "agrees"
    _write(tmp_path, "morph_smoothness", rows(kept=0.1, contour=-0.3))
    v = verdicts()
    assert v["Morphs between faces stay faces"] == "disagrees"
    assert v["Morphs between non-faces show contours of faces in between"] == "disagrees"


def _claim(tmp_path, start: str) -> Verdict:
    return next(c for c in claims(tmp_path) if c.claim.startswith(start))


def test_learned_weights_and_the_cluster_claims(tmp_path):
    ls = []
    for i in range(5):
        for setting, psnr in (("(f) W+, w̄ init", 25.0), ("(e) W+, random weights", 18.0), ("(c) W, w̄ init", 20.0),
                              ("(b) W, random weights", 20.5)):
            ls.append({"image": f"x/i{i}", "setting": setting, "psnr_db": psnr + 0.1 * i, "loss_x1e5": 1.0})
    _write(tmp_path, "latent_space_choice", ls)
    assert _claim(tmp_path, "Learned weights embed better than random weights, W+").verdict == "agrees"
    assert _claim(tmp_path, "Learned weights embed better than random weights, W ").verdict == "disagrees"

    rng = np.random.default_rng(0)
    names = [f"faces/f{i}" for i in range(5)] + [f"{c}/{c[0]}{i}" for c in ("cats", "paintings") for i in range(5)]
    pairs = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            ca, cb = names[a].split("/")[0], names[b].split("/")[0]
            base = 20.0 if ca == cb == "faces" else (60.0 if ca == cb == "paintings" else 40.0)
            pairs.append({"image_a": names[a], "image_b": names[b], "class_a": ca, "class_b": cb,
                          "dist": base + rng.normal(0, 1)})
    _write(tmp_path, "pairwise_distances", pairs)
    c = _claim(tmp_path, "Faces form a cluster")
    assert c.verdict == "agrees" and c.comparison.n_pairs == 10 * 20
    assert _claim(tmp_path, "Paintings scatter the most").verdict == "agrees"


def test_table1_per_transform_and_translation_is_the_worst(tmp_path):
    rows = []
    for i in range(5):
        for t, loss in (("original", 1.0), ("translate_right_140", 2.0), ("translate_left_160", 1.8),
                        ("zoom_in_2x", 0.9), ("rotate_90", 1.5)):
            rows.append({"image": f"faces/f{i}", "transform": t, "loss_x1e5": loss + 0.01 * i * (t != "original")})
    _write(tmp_path, "affine_per_image", rows)
    assert _claim(tmp_path, "Table 1: translate_right_140 hurts").verdict == "agrees"
    assert _claim(tmp_path, "Table 1: zoom_in_2x hurts").verdict == "disagrees"
    worst = _claim(tmp_path, "Table 1: translation is the worst")
    assert worst.verdict == "agrees" and "translate_right_140" in worst.evidence and "rotate_90" in worst.evidence


def test_mse_drift_paintings_slowest_and_the_same_distance_claims(tmp_path):
    ab = []
    for i, cls in enumerate(("faces", "cats", "dogs", "cars", "paintings")):
        for variant, dist in (("mse", 30.0), ("full", 45.0)):
            ab.append({"image": f"{cls}/x", "class": cls, "variant": variant, "ssim": 0.5, "dist_to_w_avg": dist + i})
    _write(tmp_path, "loss_ablation", ab)
    c = _claim(tmp_path, "The MSE-only loss pulls non-faces towards the average face")
    assert c.verdict == "agrees" and c.comparison.n_images == 4 and c.comparison.effect == -15.0

    lv = [{"class": cls, "image": f"{cls}/{i}", "steps_to_95pct": steps + i}
          for cls, steps in (("faces", 100), ("cats", 300), ("cars", 320), ("paintings", 900)) for i in range(4)]
    _write(tmp_path, "loss_vs_steps", lv)
    assert _claim(tmp_path, "Paintings converge the slowest").verdict == "agrees"

    def init(rel: float, noise: float) -> list[dict]:
        rng = np.random.default_rng(1)
        out = []
        for i in range(8):
            d = 70.0 + i
            out.append({"image": f"cats/c{i}", "class": "cats", "init": "mean", "seed": 0, "loss_x1e5": 1.0, "dist_to_w_avg": d})
            out.append({"image": f"cats/c{i}", "class": "cats", "init": "uniform", "seed": 0, "loss_x1e5": 1.0,
                        "dist_to_w_avg": d * (1 + rel + rng.normal(0, noise))})
        return out

    same = "Random and w̄ starts land equally far from w̄ for non-faces"
    _write(tmp_path, "init_per_image", init(0.005, 0.005))
    c = _claim(tmp_path, same)
    assert c.verdict == "agrees" and c.comparison.direction == "equal"
    _write(tmp_path, "init_per_image", init(0.2, 0.005))
    assert _claim(tmp_path, same).verdict == "disagrees"
    assert "within the margin" in write_report(tmp_path).read_text()


def test_cluster_claims_with_one_image_per_class_are_not_decided(tmp_path):
    """One image per class: no pair within a class, so the cluster claims cannot be decided (no crash)."""
    names = ["faces/f0", "cats/c0", "paintings/p0"]
    _write(tmp_path, "pairwise_distances", [{"image_a": a, "image_b": b, "class_a": a.split("/")[0],
                                             "class_b": b.split("/")[0], "dist": 10.0}
                                            for i, a in enumerate(names) for b in names[i + 1:]])
    assert _claim(tmp_path, "Faces form a cluster").verdict == "not run"
    assert _claim(tmp_path, "Paintings scatter the most").verdict == "not run"
