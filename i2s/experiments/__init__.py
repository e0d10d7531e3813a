"""The paper's experiments as functions the notebooks call (no logic lives only in a notebook),
one module per notebook: :mod:`.class_embedding` (01), :mod:`.affine_robustness` (02),
:mod:`.defects` (03), :mod:`.latent_space_choice` (04), :mod:`.applications` (05),
:mod:`.pairwise_distances` (06), :mod:`.embedding_algorithm` (07); what they share in
:mod:`.session` and :mod:`.common`. Notebooks call them through this package
(``from i2s import experiments as ex``), which re-exports every name they use.

``session = Session.start(model=..., profile=..., ...)`` loads the generator and the loss,
prints which tier ran, and gives every experiment the same settings, cache and output folders:
figures under ``figures/<model>/``, numbers under ``results/<model>/<profile>/``.

Every experiment returns a named result (a dataclass such as :class:`ClassEmbedding`) whose
figure and table fields carry the file names they are saved under; ``result.save(session)``
writes them all. :data:`NOTEBOOK_RESULTS` lists which results each notebook produces, and
:func:`expected_outputs` derives from it the files a complete run must leave behind (what
:mod:`i2s.report` checks), so every output name is written down exactly once.

Profiles (:data:`PROFILES`): ``quick`` (the mini model on a CPU: few enough steps that all
seven notebooks run in about half an hour, enough that the pictures mean something), ``full``
(1000 steps: this CPU's longer run, hours) and ``paper`` (5000 steps, the paper's settings; for a
GPU and the official weights).
"""

from __future__ import annotations

from ..edits import ExpressionRule, expression_rule
from . import session
from .affine_robustness import ZOOM_INPUTS, AffineRobustness, ZoomExplanation, affine_robustness, zoom_explanation
from .applications import (AVERAGE, PAIR, EmbeddedClasses, ExplorerGrids, ExpressionEditing, LatentDirections,
                           Morphing, StyleTransfer, colour_distance, colour_stats, crossover_grid, crossover_measures,
                           crossover_splits, embed_classes, explore, expression_editing, expression_rows,
                           expression_smile, latent_directions, load_expression_pairs, load_styles, morph_rows,
                           morph_faces, morph_pairs, morph_smoothness, morphing, smile_comparison, smile_summary,
                           style_transfer)
from .class_embedding import ClassEmbedding, class_embedding
from .common import (OutputKind, Result, beside_paper, faces, figure_output, first_of_each_class, load_classes, render,
                     result_table, table_output)
from .defects import Defects, defects
from .edit_claims import KEPT_SHARE, EditClaim, crossover_claims, expression_claims, lams_where_both_hold, morph_claims
from .embedding_algorithm import (IterativeEmbedding, LossAblation, LossVsSteps, ResizeTrick, iterative_embedding,
                                  loss_ablation, loss_vs_steps, resize_trick)
from .latent_space_choice import (InitPerClass, LatentSpaceChoice, NoiseVariation, init_per_class, latent_space_choice,
                                  noise_variation)
from .pairwise_distances import PairwiseDistances, pairwise_distances
from .session import PLAIN_FOLDER_NET, PROFILES, REPO, Session, figures_folder, run_folder

NOTEBOOK_RESULTS: dict[str, tuple[type[Result], ...]] = {
    "01_class_embedding": (ClassEmbedding,),
    "02_affine_robustness": (AffineRobustness, ZoomExplanation),
    "03_defects": (Defects,),
    "04_latent_space_choice": (LatentSpaceChoice, InitPerClass, NoiseVariation),
    "05_applications": (Morphing, StyleTransfer, ExpressionEditing, LatentDirections, ExplorerGrids),
    "06_pairwise_distances": (PairwiseDistances,),
    "07_embedding_algorithm": (LossAblation, LossVsSteps, IterativeEmbedding, ResizeTrick),
}


def expected_outputs() -> dict[str, dict[str, list[str]]]:
    """Per notebook, the figures (``figures/<model>/<name>.png``) and tables
    (``results/<model>/<profile>/<name>.csv``) a complete run writes: the required output
    fields of the results in :data:`NOTEBOOK_RESULTS`."""
    out: dict[str, dict[str, list[str]]] = {}
    for notebook, results in NOTEBOOK_RESULTS.items():
        outputs = [o for r in results for o in r.outputs(required_only=True)]
        out[notebook] = {"figures": [name for _, kind, name in outputs if kind == "figure"],
                         "tables": [name for _, kind, name in outputs if kind == "table"]}
    return out
