"""§4 applications measured (i2s.experiments): expression transfer's threshold rule and smile
table, crossover's identity / colour table, morph smoothness, full figure labels, and where a
notebook run by hand writes. Tiny generators with the real architecture; nothing is embedded."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO, make_generator

import i2s.experiments as ex
from i2s.edits import expression_direction


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> ex.Session:
    """A Session around a tiny 32-px generator (8 style layers), framed like mini (zoom 0.7) so
    that the dlib measures run on its images."""
    G = make_generator(32)
    G.info = {**G.info, "align_zoom": 0.7}
    tmp = tmp_path_factory.mktemp("apps")
    (tmp / "figures").mkdir()
    (tmp / "results").mkdir()
    no_loss = SimpleNamespace(perceptual_net="none")  # nothing here embeds; the tables' tag names it
    return ex.Session(G=G, loss_fn=no_loss, model="tiny", profile="quick", steps=1, seed=0, device="cpu",  # type: ignore[arg-type]
                      figures=tmp / "figures", results=tmp / "results")


def codes_near_mean(G, n: int, scale: float, seed: int = 0) -> torch.Tensor:
    """``n`` W+ codes: the generator's w̄ on every layer plus Gaussian noise of std ``scale``."""
    g = torch.Generator().manual_seed(seed)
    w_avg = G.mapping.w_avg.expand(G.num_layers, -1)
    return w_avg + scale * torch.randn(n, G.num_layers, w_avg.shape[-1], generator=g)


# ----------------------------------------------------------------------------- §4.3 expression


def test_tier_chooses_the_threshold_rule():
    G = make_generator(32)
    assert ex.expression_rule(G) == ex.ExpressionRule(0.5, relative=True)  # tier "random"
    G.info = {**G.info, "tier": "embedded"}
    assert ex.expression_rule(G).relative and ex.expression_rule(G, 1.5).threshold == 1.5
    G.info = {**G.info, "tier": "paper"}
    assert ex.expression_rule(G) == ex.ExpressionRule(1.0, relative=False)
    assert ex.expression_rule(G).normalize == "none" and "own change" in ex.expression_rule(G).describe()
    assert "absolute" in ex.expression_rule(G).describe() and "relative" in ex.ExpressionRule(1.0, True).describe()


def test_relative_threshold_changes_the_image_where_the_absolute_one_zeroes_everything(session):
    """The case of issue 17: every row of w3 − w2 is far below 1.0, as for mini's quick embeddings."""
    G = session.G
    w_target, w2 = codes_near_mean(G, 2, 0.3)
    w3 = w2 + 0.02 * torch.randn(w2.shape, generator=torch.Generator().manual_seed(1))  # row norms ≈ 0.16
    assert (w3 - w2).norm(dim=-1).max() < 1.0
    lams = (0.0, 3.0)
    with pytest.warns(RuntimeWarning, match="all zeros"):
        absolute = ex.expression_rows(session, w_target[None], w2, w3, lams, ex.ExpressionRule(1.0, relative=False))
    assert torch.equal(absolute[0, 0], absolute[0, 1])  # λ = 3 renders the unedited face: a no-op
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the relative rule keeps rows: no "all zeros" warning
        relative = ex.expression_rows(session, w_target[None], w2, w3, lams)  # the tier's rule: relative
    change = ((relative[0, 1] - relative[0, 0]) * 127.5).square().mean().sqrt().item()
    assert change > 1.0, f"λ = 3 changed the image by only {change:.3f} (RMS, 0-255)"
    assert torch.allclose(relative[0, 0], absolute[0, 0])  # λ = 0 is the target either way
    kept = expression_direction(w2, w3, 1.0, relative=True).norm(dim=-1) > 0
    assert 0 < int(kept.sum()) < G.num_layers  # some rows kept, the below-average ones zeroed


def test_smile_table_has_one_row_per_source_target_and_lambda(session):
    G = session.G
    people = ["p0", "p1", "p2"]
    w_neutral = codes_near_mean(G, 3, 0.3, seed=2)
    w_smiling = w_neutral + 0.3 * torch.randn(w_neutral.shape, generator=torch.Generator().manual_seed(3))
    lams = (-1.5, 1.5, 3.0)  # λ = 0, the reference, is added
    table = ex.expression_smile(session, people, w_neutral, w_smiling, lams)
    assert len(table) == 3 * 2 * 4
    assert {"source", "target", "lam", "smile_ratio", "delta_smile_ratio", "identity_distance", "rule"} <= set(table)
    assert not (table["source"] == table["target"]).any()
    assert sorted(table["lam"].unique()) == [-1.5, 0.0, 1.5, 3.0]
    assert set(table.groupby(["source", "target"]).size()) == {4}
    assert (table["rule"] == "relative").all()
    assert np.isfinite(table["smile_ratio"]).all() and (table["smile_ratio"] > 0).all()
    at0 = table[table["lam"] == 0]
    assert (at0["delta_smile_ratio"] == 0).all() and np.allclose(at0["identity_distance"], 0)
    # the λ = 0 image is the target's own embedding: its smile ratio is the same for every source
    assert (at0.groupby("target")["smile_ratio"].agg(np.ptp) < 1e-3).all()
    moved = table[table["lam"] == 3.0]
    assert (moved["identity_distance"] > 0).all()
    recomputed = table.set_index(["source", "target", "lam"])["smile_ratio"]
    for (src, tgt, lam), v in table.set_index(["source", "target", "lam"])["delta_smile_ratio"].items():
        assert v == pytest.approx(recomputed[(src, tgt, lam)] - recomputed[(src, tgt, 0.0)])

    assert (table["source_kind"] == ex.PAIR).all() and (table["normalize"] == "none").all()

    # average=True: one source per target, the mean of the *other* people's pairs
    avg = ex.expression_smile(session, people, w_neutral, w_smiling, lams, average=True)
    assert len(avg) == 3 * 4 and (avg["source_kind"] == ex.AVERAGE).all()
    assert set(avg["source"]) == {"mean of 2 others"} and sorted(avg["target"]) == sorted(people * 4)
    by_hand = ex.expression_smile(session, ["p0", "mean"], torch.stack([w_neutral[0], w_neutral[1:].mean(0)]),
                                  torch.stack([w_smiling[0], w_smiling[1:].mean(0)]), lams)
    ours = avg[avg["target"] == "p0"].set_index("lam")["smile_ratio"]
    expected = by_hand[by_hand["target"] == "p0"].set_index("lam")["smile_ratio"]
    assert np.allclose(ours.sort_index(), expected.sort_index(), atol=1e-6)  # the mean pair's direction, applied to p0

    both = pd.concat([table, avg], ignore_index=True)
    summary = ex.smile_summary(both)
    assert list(summary["source_kind"]) == [ex.PAIR] * 4 + [ex.AVERAGE] * 4
    assert (summary[summary["source_kind"] == ex.AVERAGE]["n_pairs"] == 3).all()
    summary = summary[summary["source_kind"] == ex.PAIR]
    assert list(summary["scope"]) == ["λ=-1.5", "λ=1.5", "λ=3", "mean over λ>0"]
    assert list(summary["direction"]) == ["less", "greater", "greater", "greater"]
    assert (summary["n_pairs"] == 6).all() and (summary["n_targets"] == 3).all()
    assert set(summary["verdict"]) <= {"agrees", "disagrees", "inconclusive"}
    assert (summary["low"] <= summary["high"]).all()


def _synthetic_smile_table(slope: float, noise: float, n_people: int = 5) -> pd.DataFrame:
    """A smile table whose Δ smile ratio is ``slope`` · λ plus noise, for known verdicts."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(n_people):
        for t in range(n_people):
            if s != t:
                base = 0.8 + 0.02 * t
                for lam in (-1.5, 0.0, 1.5, 3.0):
                    jitter = 0.0 if lam == 0 else noise * rng.standard_normal()
                    rows.append({"source": f"p{s}", "target": f"p{t}", "lam": lam,
                                 "smile_ratio": base + slope * lam + jitter, "identity_distance": 0.1 * abs(lam)})
    return pd.DataFrame(rows)


def test_smile_summary_verdicts_on_known_data():
    works = ex.smile_summary(_synthetic_smile_table(slope=0.03, noise=0.005)).set_index("scope")
    assert (works["verdict"] == "agrees").all()  # λ < 0 narrows (less), λ > 0 widens (greater)
    assert works.loc["λ=3", "mean_delta"] == pytest.approx(0.09, abs=0.01)
    assert works.loc["mean over λ>0", "mean_delta"] == pytest.approx(0.03 * 2.25, abs=0.01)
    assert works.loc["λ=1.5", "std_delta"] > 0 and works.loc["λ=1.5", "share_same_person"] == 1.0
    backwards = ex.smile_summary(_synthetic_smile_table(slope=-0.03, noise=0.005)).set_index("scope")
    assert (backwards["verdict"] == "disagrees").all()
    nothing = ex.smile_summary(_synthetic_smile_table(slope=0.0, noise=0.05)).set_index("scope")
    assert nothing.loc["λ=3", "verdict"] == "inconclusive"


def test_smile_comparison_pairs_each_lambda_with_the_same_pairs_lambda_zero():
    table = _synthetic_smile_table(slope=0.03, noise=0.0)
    c, per_pair = ex.smile_comparison(table)  # pooled over λ > 0: mean of 1.5 and 3
    assert c.verdict == "agrees" and (c.n_pairs, c.n_images) == (20, 5) and len(per_pair) == 20
    assert np.allclose(per_pair["delta"], 0.03 * 2.25) and c.effect == pytest.approx(0.0675)
    c, _ = ex.smile_comparison(table, -1.5)
    assert c.direction == "less" and c.verdict == "agrees" and c.effect == pytest.approx(-0.045)
    assert ex.smile_comparison(table, 7.0) is None  # no such λ
    gap = table.copy()
    gap.loc[gap["lam"] == 3.0, "smile_ratio"] = np.nan  # a face whose landmarks were not found
    assert ex.smile_comparison(gap, 3.0) is None


# ----------------------------------------------------------------------------- §4.2 crossover


def test_crossover_splits_are_the_default_and_two_either_side():
    assert ex.crossover_splits(18) == [7, 9, 11]
    assert ex.crossover_splits(10) == [3, 5, 7]
    assert ex.crossover_splits(4) == [1, 2, 3]  # kept inside [1, L − 1]


def test_colour_distance_is_the_distance_of_channel_means_and_stds():
    g = torch.Generator().manual_seed(0)
    a = (0.1 * torch.randn(2, 3, 16, 16, generator=g)).clamp(-0.7, 0.7)  # + 0.2 stays inside [-1, 1]
    assert np.allclose(ex.colour_distance(a, a), 0)
    shifted = a + 0.2  # every channel's mean moves by 0.2 · 127.5, the stds stay
    assert np.allclose(ex.colour_distance(a, shifted), np.sqrt(3) * 0.2 * 127.5)
    assert ex.colour_stats(a).shape == (2, 6)


def test_crossover_table_columns_and_the_all_content_split(session):
    G = session.G
    w_content, w_style = codes_near_mean(G, 2, 0.3, seed=4), codes_near_mean(G, 2, 0.3, seed=5)
    style_images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(6)) * 2 - 1
    table = ex.crossover_measures(session, ["faces/a", "faces/b"], w_content, ["style/x", "style/y"], w_style,
                                  style_images)
    assert list(table.columns) == ["content", "style", "split_layer", "default_split", "content_layers",
                                   "identity_to_content", "same_person", "face_score", "face_detected", "content_kept",
                                   "colour_to_style", "colour_content_to_style", "colour_gain"]
    assert len(table) == 2 * 2 * 3 and sorted(table["split_layer"].unique()) == [2, 4, 6]
    assert table.loc[table["default_split"], "split_layer"].unique().tolist() == [4]
    assert np.isfinite(table[["identity_to_content", "colour_to_style"]].to_numpy()).all()
    assert table.groupby(["content", "style"]).size().eq(3).all()
    # taking every layer from the content gives the content back: same face, no colour change
    whole = ex.crossover_measures(session, ["faces/a", "faces/b"], w_content, ["style/x", "style/y"], w_style,
                                  style_images, splits=[G.num_layers])
    assert np.allclose(whole["identity_to_content"], 0) and whole["same_person"].all()
    assert (whole["content_kept"] == whole["face_detected"]).all()  # the person is kept: kept iff still a face
    assert np.allclose(whole["colour_gain"], 0, atol=1e-6)
    # less from the content (a lower split) moves the face further from it, on average
    by_split = table.groupby("split_layer")["identity_to_content"].mean()
    assert by_split[2] >= by_split[6]


# ----------------------------------------------------------------------------- §4.1 morph


def test_smoothness_of_known_frame_sequences():
    a, b = -0.5 * torch.ones(3, 8, 8), 0.5 * torch.ones(3, 8, 8)
    even = torch.stack([a + (b - a) * t for t in torch.linspace(0, 1, 5)])
    jump = torch.stack([a, a, a, b, b])
    table = ex.morph_smoothness(torch.stack([even, jump]), ["even", "jump"]).set_index("morph")
    assert table.loc["even", "max_over_mean"] == pytest.approx(1.0)
    assert table.loc["even", "mean_rms_change"] == pytest.approx(127.5 / 4)
    assert table.loc["jump", "max_over_mean"] == pytest.approx(4.0)  # all of the change in one of 4 steps
    assert table.loc["jump", "end_to_end_rms"] == pytest.approx(127.5)
    with pytest.raises(ValueError):
        ex.morph_smoothness(even[None, :1], ["one frame"])


def test_morph_of_a_tiny_generator_is_measured(session):
    w1, w2 = codes_near_mean(session.G, 2, 0.5, seed=7)
    frames = ex.morph_rows(session, [(w1, w2), (w2, w1)], frames=7)
    assert frames.shape == (2, 7, 3, 32, 32)
    table = ex.morph_smoothness(frames, ["1 → 2", "2 → 1"])
    assert list(table.columns) == ["morph", "frames", "mean_rms_change", "max_rms_change", "max_over_mean",
                                   "end_to_end_rms"]
    assert (table["frames"] == 7).all() and (table["mean_rms_change"] > 0).all()
    assert (table["max_over_mean"] >= 1).all() and np.isfinite(table["max_over_mean"]).all()
    # the reverse morph has the same steps in the opposite order
    assert table.loc[0, "mean_rms_change"] == pytest.approx(table.loc[1, "mean_rms_change"], rel=1e-4)


def test_morphing_result_has_full_labels_and_the_paper_figure(session):
    G = session.G
    names = ["faces/astronaut_eileen_collins", "faces/woman_curly_hair_interfaces080", "faces/c", "cats/a_long_cat_name",
             "dogs/d"]
    labels = ["faces", "faces", "faces", "cats", "dogs"]
    w = codes_near_mean(G, 5, 0.4, seed=8)
    images = ex.render(session, w)
    result = ex.morphing(session, ex.EmbeddedClasses(names, labels, images, w), frames=5)
    assert result.labels[0] == "faces/astronaut_eileen_collins → faces/woman_curly_hair_interfaces080"
    # every face pair, the two classes both ways, a face to the last class
    assert list(result.smoothness["morph"]) == result.labels and len(result.labels) == 6
    assert {"kept_between", "faces_between", "on_path_between", "mid_face_score"} <= set(result.smoothness.columns)
    fig = result.figure
    title = " ".join(fig._suptitle.get_text().split())
    assert title.replace("\n", "").startswith("Fig. 4 / Fig. 15 (§4.1)") and "5 of 6 morphs shown" in title
    assert "REPORT: Morphs between faces stay faces" in title
    row_labels = [ax.get_ylabel().replace("\n", "") for ax in fig.axes if ax.get_ylabel()]
    assert row_labels == [result.labels[k] for k in (0, 1, 2, 3, 5)]  # in full, only wrapped
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == "photo A" and titles[-1] == "photo B" and len(titles) == 5 + 2
    paths = result.save(session)
    assert {p.name for p in paths} == {"fig04_morphing.png", "morph_smoothness.csv"}
    import matplotlib.pyplot as plt

    plt.close("all")


def test_morph_pairs_of_the_evaluation_set_give_five_morphs_a_side():
    labels = ["faces"] * 5 + [c for c in ("cats", "dogs", "cars", "paintings") for _ in range(5)]
    pairs, shown = ex.morph_pairs(labels)
    both_faces = [p for p in pairs if labels[p[0]] == labels[p[1]] == "faces"]
    no_face = [p for p in pairs if "faces" not in (labels[p[0]], labels[p[1]])]
    assert len(both_faces) == 10 and len(no_face) == 8 and len(set(pairs)) == len(pairs)
    assert [labels[pairs[k][0]] for k in shown] == ["faces"] * 3 + ["cats", "cats", "faces"]
    assert labels[pairs[shown[3]][1]] == "cats" and labels[pairs[shown[4]][1]] == "dogs"  # within, then between


def test_morph_pairs_and_claims_follow_the_generators_domain():
    """For a cat generator, "faces" in §4.1's claims are its cats: the cat pairs are the in-domain
    morphs, and human faces count as a class of their own (i2s.data.in_domain)."""
    from i2s.data import in_domain

    labels = ["faces"] * 3 + ["cats"] * 4 + ["dogs"] * 2
    pairs, _ = ex.morph_pairs(labels, in_domain("cats"))
    cat_pairs = [p for p in pairs if labels[p[0]] == labels[p[1]] == "cats"]
    assert len(cat_pairs) == 6 and sum(labels[a] == labels[b] == "faces" for a, b in pairs) == 1  # faces: within
    table = pd.DataFrame([{"morph": f"cats/c{i} → cats/d{i}", "max_over_mean": 1.1, "kept_between": 0.9 + 0.01 * i,
                           "mid_face_score": 0.0, "ends_face_score": 0.0} for i in range(5)]
                         + [{"morph": f"faces/a{i} → dogs/b{i}", "max_over_mean": 1.5, "kept_between": 0.0,
                             "mid_face_score": 0.2 + 0.01 * i, "ends_face_score": 0.0} for i in range(5)])
    as_cats = ex.morph_claims(table, in_domain("cats"))
    assert as_cats[0][1].verdict == "agrees" and "(5)" in as_cats[0][2]  # the five cat morphs stay cats
    assert as_cats[1][1] is not None and "(5)" in as_cats[1][2]  # faces → dogs: two non-cat ends
    as_faces = ex.morph_claims(table)  # read as a face model's: no face ↔ face morph at all
    assert as_faces[0][1] is None


def test_morph_faces_on_known_frames():
    """A 'morph' that stays one real face is kept all the way; one through noise is not."""
    from i2s.data import expression_pairs, load_target

    _, a, _ = expression_pairs()[0]
    face = load_target(a, 64, 0.7)[0]
    noise = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    still = torch.stack([face] * 5)
    broken = torch.stack([face, noise, noise, noise, face])
    table = ex.morph_faces(torch.stack([still, broken]), zoom=0.7)
    assert table.loc[0, "kept_between"] == 1.0 and table.loc[0, "on_path_between"] == 1.0
    assert table.loc[1, "faces_between"] == 0.0 and table.loc[1, "kept_between"] == 0.0
    assert table.loc[1, "mid_face_score"] < 0 <= table.loc[1, "ends_face_score"]


# ----------------------------------------------------------------------------- outputs and labels


def test_new_tables_are_expected_outputs_of_notebook_05():
    expected = ex.expected_outputs()["05_applications"]
    assert {"expression_smile", "expression_smile_summary", "crossover_measures", "morph_smoothness"} <= set(
        expected["tables"])
    assert {"fig04_morphing", "fig06_style_transfer", "fig07_expression", "fig08_crossover_classes"} <= set(
        expected["figures"])


@pytest.mark.parametrize("text", ["faces/woman_curly_hair_interfaces080", "short", "x" * 40,
                                  "Fig. 7 (§4.3): expression transfer from london002", ""])
def test_wrapped_labels_keep_every_character(text):
    from i2s.plots import wrap_label

    wrapped = wrap_label(text, 16)
    assert wrapped.replace("\n", "") == text
    assert all(len(line) <= 16 for line in wrapped.split("\n"))


def test_blank_cells_and_cell_labels():
    from i2s.plots import image_rows

    x = torch.zeros(2, 3, 8, 8)
    fig = image_rows([[None, x[0]], x], ["first row", "second row"], ["a_very_long_column_label_of_30c", "b"],
                     cell_labels=[None, ["under", None]])
    axes = fig.axes
    assert not axes[0].images and axes[1].images  # the None cell is blank
    assert axes[0].get_title().replace("\n", "") == "a_very_long_column_label_of_30c"
    assert axes[2].get_xlabel() == "under" and axes[3].get_xlabel() == ""
    import matplotlib.pyplot as plt

    plt.close(fig)


# ----------------------------------------------------------------------------- where notebooks write


def test_a_notebook_run_by_hand_writes_under_runs():
    import nbformat

    nb = nbformat.read(REPO / "notebooks" / "05_applications.ipynb", as_version=4)
    params: dict = {}
    exec(nb.cells[0].source, {}, params)  # the papermill parameters cell
    notebooks = REPO / "notebooks"
    for key in ("figures_dir", "results_dir"):
        assert (notebooks / params[key]).resolve() == REPO / "runs", key
    assert "runs/" in (REPO / ".gitignore").read_text().split()


def _run_notebooks_stubbed(monkeypatch, record):
    """scripts/run_notebooks.py with papermill, the generator and the report stubbed out:
    ``record(src, dst, kw)`` sees every notebook execution; returns the module."""
    import papermill

    import i2s.models

    monkeypatch.setattr(papermill, "execute_notebook", lambda src, dst, **kw: record(src, dst, kw))
    monkeypatch.setattr(i2s.models, "load_generator", lambda *a, **k: make_generator(32))
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import run_notebooks
    finally:
        sys.path.pop(0)
    return run_notebooks


def test_run_notebooks_skip_done_and_run_times_merge(monkeypatch, tmp_path):
    """--skip-done skips a notebook whose figures and CSVs all exist (a long profile resumed on
    another machine from committed results); run_times.csv keeps one row per notebook, old rows
    of notebooks not run kept, rows of notebooks run replaced."""
    import i2s.models
    import i2s.report
    from i2s.io import read_csv_rows, write_csv

    calls = []
    monkeypatch.setattr(i2s.report, "write_report", lambda results: results / "REPORT.md")
    run_notebooks = _run_notebooks_stubbed(monkeypatch, lambda src, dst, kw: calls.append(Path(src).stem))
    monkeypatch.setattr(run_notebooks, "device_name", lambda device: "cpu: test")
    figures, results = tmp_path / "figures", tmp_path / "results"
    model = i2s.models.short_name(make_generator(32))
    res = results / model / "full"
    exp = i2s.report.EXPECTED["06_pairwise_distances"]
    for f in exp["figures"]:  # the full profile's figures are a model's default ones: figures/<model>/
        (figures / model).mkdir(parents=True, exist_ok=True)
        (figures / model / f"{f}.png").write_bytes(b"png")
    for t in exp["tables"]:  # 06 is done; 03 has only one of its tables
        write_csv(res / f"{t}.csv", [{"a": 1}])
    write_csv(res / f"{i2s.report.EXPECTED['03_defects']['tables'][0]}.csv", [{"a": 1}])
    write_csv(res / "run_times.csv", [{"notebook": "06_pairwise_distances", "seconds": 9.0, "steps": "profile",
                                       "device": "old"}, {"notebook": "03_defects", "seconds": 5.0,
                                                          "steps": "profile", "device": "old"}])
    argv = ["--only", "03,06", "--model", "mini", "--profile", "full", "--figures", str(figures),
            "--results", str(results)]
    assert run_notebooks.main(argv + ["--skip-done"]) == 0
    assert calls == ["03_defects"]
    rows = {r["notebook"]: r for r in read_csv_rows(res / "run_times.csv")}
    assert rows["06_pairwise_distances"]["device"] == "old" and rows["03_defects"]["device"] == "cpu: test"
    assert run_notebooks.main(argv) == 0  # without the flag every notebook runs
    assert calls[1:] == ["03_defects", "06_pairwise_distances"]


@pytest.mark.slow
def test_a_perceptual_network_other_than_the_default_runs_in_folders_of_its_own(monkeypatch, tmp_path):
    """Session.start(perceptual="efficientnet-lite0"): the loss uses the ImageNet EfficientNet-Lite0
    and every table says so; results and figures go to <profile>-efficientnet-lite0, never over the
    default network's; run_notebooks --perceptual passes it to every notebook."""
    import i2s.models
    import i2s.report

    monkeypatch.setattr(ex.session, "load_generator", lambda *a, **k: make_generator(32))
    s = ex.Session.start(model="mini", profile="quick", figures_dir=tmp_path / "f", results_dir=tmp_path / "r",
                         perceptual="efficientnet-lite0")
    name = s.model
    assert s.loss_fn.perceptual_net.startswith("efficientnet-lite0") and s.tag["perceptual_net"] == s.loss_fn.perceptual_net
    assert s.results == tmp_path / "r" / name / "quick-efficientnet-lite0"
    assert s.figures == tmp_path / "f" / name / "quick-efficientnet-lite0"
    d = ex.Session.start(model="mini", profile="quick", figures_dir=tmp_path / "f", results_dir=tmp_path / "r")
    assert d.results == tmp_path / "r" / name / "quick" and d.figures == tmp_path / "f" / name / "quick"
    assert not d.loss_fn.perceptual_net.startswith("efficientnet")
    full = ex.Session.start(model="mini", profile="full", figures_dir=tmp_path / "f", results_dir=tmp_path / "r")
    assert full.figures == tmp_path / "f" / name  # the full profile's are the default figures, apart from quick's

    calls, reports = [], []
    monkeypatch.setattr(i2s.report, "write_report", lambda results: reports.append(results) or results / "REPORT.md")
    run_notebooks = _run_notebooks_stubbed(monkeypatch, lambda src, dst, kw: calls.append((Path(dst), kw)))
    assert run_notebooks.main(["--only", "06", "--model", "mini", "--perceptual", "efficientnet-lite0",
                               "--figures", str(tmp_path / "f"), "--results", str(tmp_path / "r")]) == 0
    assert calls[0][1]["parameters"]["perceptual"] == "efficientnet-lite0"
    assert calls[0][0].parent.name == "quick-efficientnet-lite0"  # the executed copy too
    assert reports == [tmp_path / "r" / i2s.models.short_name(make_generator(32)) / "quick-efficientnet-lite0"]


def test_notebooks_side_by_side_wait_for_the_one_whose_embeddings_they_reuse(monkeypatch, tmp_path):
    """--jobs 2: two notebooks at a time, 04-06 only after 01 has finished (they reuse its
    embeddings), every notebook once, a failure not blocking its dependants; the kernels get
    cores/2 threads and the caller's environment is given back afterwards."""
    import os
    import threading

    import i2s.report

    run_notebooks = _run_notebooks_stubbed(monkeypatch, lambda src, dst, kw: None)
    events, lock, active, peak = [], threading.Lock(), [0], [0]

    def run(name, fail=()):
        with lock:
            events.append(("start", name[:2]))
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05 if name[:2] != "01" else 0.3)
        with lock:
            active[0] -= 1
            events.append(("end", name[:2]))
        if name[:2] in fail:
            raise RuntimeError("a cell failed")

    names = ["01_a", "04_b", "07_c", "02_d", "06_e"]
    run_notebooks.run_side_by_side(names, 2, run)
    assert sorted(n for e, n in events if e == "start") == ["01", "02", "04", "06", "07"] and peak[0] == 2
    end_01 = events.index(("end", "01"))
    assert all(events.index(("start", n)) > end_01 for n in ("04", "06"))  # waited for 01
    assert events.index(("start", "07")) < end_01  # ...while 07 and 02 used the other slot
    events.clear()
    try:
        run_notebooks.run_side_by_side(["01_a", "05_b"], 2, lambda n: run(n, fail=("01",)))
    except RuntimeError:
        pass
    assert ("start", "05") in events  # 01 failed: 05 still ran (and embeds for itself)
    events.clear()
    run_notebooks.run_side_by_side(["04_b", "07_c"], 2, run)  # 01 not in this run: nothing to wait for
    assert peak[0] == 2 and len(events) == 4

    times = tmp_path / "times.csv"
    from i2s.io import write_csv

    write_csv(times, [{"notebook": n, "seconds": t} for n, t in
                      (("01_a", 100), ("04_b", 400), ("07_c", 300), ("02_d", 200))])
    order = run_notebooks.longest_first([Path(f"{n}.ipynb") for n in ("01_a", "02_d", "04_b", "07_c")], times)
    assert [p.stem for p in order] == ["01_a", "04_b", "07_c", "02_d"]  # 01 first: the longest (04) waits for it

    threads = []
    monkeypatch.setattr(i2s.report, "write_report", lambda results: results / "REPORT.md")
    run_notebooks = _run_notebooks_stubbed(
        monkeypatch, lambda src, dst, kw: threads.append(os.environ.get("OMP_NUM_THREADS")))
    monkeypatch.setattr(run_notebooks, "device_name", lambda device: "cpu: test")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert run_notebooks.main(["--only", "03,06", "--model", "mini", "--jobs", "2", "--figures", str(tmp_path / "f"),
                               "--results", str(tmp_path / "r")]) == 0
    assert threads == [str(max(1, (os.cpu_count() or 1) // 2))] * 2 and "OMP_NUM_THREADS" not in os.environ


def test_run_notebooks_passes_the_committed_folders(monkeypatch, tmp_path):
    import i2s.report

    import i2s.io

    calls, written = [], []
    monkeypatch.setattr(i2s.report, "write_report", lambda results: results / "REPORT.md")
    monkeypatch.setattr(i2s.io, "write_csv", lambda path, rows: written.append(path))  # not into the repository
    run_notebooks = _run_notebooks_stubbed(monkeypatch, lambda src, dst, kw: calls.append((Path(src).name, kw)))
    assert run_notebooks.main(["--only", "05", "--model", "mini"]) == 0
    assert [p.name for p in written] == ["run_times.csv"] and written[0].is_relative_to(REPO / "results")
    assert [name for name, _ in calls] == ["05_applications.ipynb"]
    params = calls[0][1]["parameters"]
    assert params["figures_dir"] == str(REPO / "figures") and params["results_dir"] == str(REPO / "results")
    assert params["interactive"] is False


def test_run_notebooks_passes_a_checkpoint_path_not_its_short_name(monkeypatch, tmp_path):
    """--model path/to/checkpoint.pt: the notebooks get the checkpoint's absolute path (they run in
    notebooks/ and cannot load a short name such as 'mini-v2-interim-58k'); a short name goes
    through as given. Results still land in the folder named after the generator."""
    import i2s.report

    calls, reports = [], []
    monkeypatch.setattr(i2s.report, "write_report", lambda results: reports.append(results) or results / "REPORT.md")
    run_notebooks = _run_notebooks_stubbed(monkeypatch, lambda src, dst, kw: calls.append(kw["parameters"]["model"]))
    ckpt = tmp_path / "ckpt" / "g.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"not read: load_generator is stubbed")
    monkeypatch.chdir(tmp_path)
    common = ["--only", "06", "--figures", str(tmp_path / "f"), "--results", str(tmp_path / "r")]
    assert run_notebooks.main(["--model", "ckpt/g.pt", *common]) == 0
    assert calls == [str(ckpt.resolve())]
    assert run_notebooks.main(["--model", "mini", *common]) == 0
    assert calls[1] == "mini"
    assert run_notebooks.notebook_model("auto") == "auto"
