"""CEASE and AddEASE (model/closed_form.py): the closed form against a direct solve, CEASE
without side rows equal to RecBole's EASE, cold items scored through their content, the
memory guard."""

import numpy as np
import pytest
import scipy.sparse as sp
from recbole.model.general_recommender import EASE

from recbole_hybrid.config import Config
from recbole_hybrid.model.closed_form import (
    check_item_count,
    ease_weights,
    gram,
    largest_item_count,
)
from recbole_hybrid.quick_start import prepare

QUIET = {"state": "ERROR", "show_progress": False}
pytestmark = pytest.mark.usefixtures("in_tmp")


def test_closed_form_matches_a_direct_solve():
    rng = np.random.default_rng(0)
    X = (rng.random((30, 6)) < 0.4).astype(np.float32)
    reg = 2.0
    B = ease_weights(gram(sp.csr_matrix(X)), reg)
    for j in range(6):  # min ||x_j - X_{-j} b||^2 + reg ||b||^2, b_j = 0
        others = [i for i in range(6) if i != j]
        A = X[:, others]
        b = np.linalg.solve(A.T @ A + reg * np.eye(5), A.T @ X[:, j])
        assert np.allclose(B[others, j], b, atol=1e-4) and B[j, j] == 0


def test_untrained_items_dropped_from_the_inputs():
    """``inputs``: an item outside them has a zero row of B, its column is the ridge regression
    on the inputs, and an input's column is EASE among the inputs (direct solves)."""
    rng = np.random.default_rng(0)
    rows = (rng.random((40, 8)) < 0.4).astype(np.float32)
    inputs = np.array([1, 1, 1, 0, 1, 1, 0, 1], bool)
    reg = 3.0
    B = ease_weights(gram(sp.csr_matrix(rows)), reg, inputs)
    kept = np.flatnonzero(inputs)
    assert not B[~inputs].any()
    for j in range(8):
        others = [i for i in kept if i != j]
        A = rows[:, others]
        b = np.linalg.solve(A.T @ A + reg * np.eye(len(others)), A.T @ rows[:, j])
        assert np.allclose(B[others, j], b, atol=1e-4) and B[j, j] == 0
    assert np.allclose(
        ease_weights(gram(sp.csr_matrix(rows)), reg, np.ones(8, bool)),
        ease_weights(gram(sp.csr_matrix(rows)), reg),
    )


def build(model, **settings):
    config = Config(
        model, "ml-100k", config_dict=dict(QUIET, **dict({"content_field": "class"}, **settings))
    )
    _, loaders, built, _ = prepare(config)
    return config, loaders, built


@pytest.mark.slow
def test_cease_without_side_rows_is_ease():
    config, (train, _, _), cease = build("CEASE", side_weight=0.0, reg_weight=250.0)
    ease = EASE(
        Config("EASE", "ml-100k", config_dict=dict(QUIET, reg_weight=250.0)), train._dataset
    )
    assert np.allclose(cease.item_similarity, ease.item_similarity, atol=1e-4)
    _, _, with_side = build("CEASE", side_weight=3.0, reg_weight=250.0)
    assert not np.allclose(with_side.item_similarity, ease.item_similarity, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, settings",
    [
        ("CEASE", {"side_weight": 3.0}),
        ("CEASE", {"side_weight": 3.0, "untrained_inputs": "drop"}),
        ("AddEASE", {"side_mix": 0.5}),
        ("AddEASE", {"side_mix": 0.5, "untrained_inputs": "drop"}),
    ],
)
def test_new_item_with_a_warm_items_content_is_ranked_for_its_fans(model, settings):
    """A new item (no interactions) whose title words equal the most popular item w's is ranked,
    for w's fans, clearly above a new item with other words: its weights come from its content."""
    _, _, fitted = build(model, content_field="movie_title", **settings)
    warm = int(np.argmax(np.asarray(fitted.interaction_matrix.sum(axis=0)).ravel()))
    fans = np.flatnonzero(fitted.interaction_matrix[:, warm].toarray().ravel())[:100]
    same = fitted.content_matrix[[warm]].toarray()
    scored = fitted.score_users(
        fitted.interaction_matrix[fans], np.vstack([same, same[:, ::-1]])
    ).numpy()
    assert scored.shape == (len(fans), fitted.n_items + 2)

    def percentile(column):  # share of the known items a new item outscores, averaged over the fans
        return np.mean([(row[1 : fitted.n_items] < row[column]).mean() for row in scored])

    assert percentile(-2) > percentile(-1) + 0.05


def test_memory_guard_fires_before_allocating():
    limit = largest_item_count(24)
    assert 30_000 < limit < 50_000
    check_item_count(limit, 24, "CEASE")
    with pytest.raises(
        MemoryError, match=rf"{limit + 1} items need 4 dense .* at most {limit} items fit"
    ):
        check_item_count(limit + 1, 24, "CEASE")
    with pytest.raises(MemoryError, match="at most"):
        build("CEASE", closed_form_memory_gb=0.001)


def test_dense_content_is_refused_with_the_field_named(tmp_path):
    from test_content import load, write_dataset

    from recbole_hybrid.data.content import ContentError

    dataset = load(write_dataset(tmp_path), model="CEASE")
    config = Config(
        "CEASE",
        "tiny",
        config_dict=dict(
            QUIET,
            data_path=str(tmp_path),
            content_fields=["vec", "bow", "tags"],
            content_field="vec",
        ),
    )
    with pytest.raises(ContentError, match=r"content \[vec\] is a dense vector"):
        from recbole_hybrid.model.general_recommender.cease import CEASE

        CEASE(config, dataset)


@pytest.mark.slow
@pytest.mark.parametrize(
    "protocol, splits", [("cold", {"normal", "cold"}), ("strong", {"recall@10"})]
)
def test_runs_the_cold_and_strong_protocols(protocol, splits):
    from recbole_hybrid.quick_start import run_recbole_hybrid

    result = run_recbole_hybrid(
        "AddEASE",
        "ml-100k",
        config_dict=dict(
            QUIET,
            protocol=protocol,
            content_field="class",
            metrics=["Recall"],
            topk=[10],
            valid_metric="recall@10",
        ),
        saved=False,
    )
    assert splits <= set(result["test_result"])
    scores = (
        [r["recall@10"] for r in result["test_result"].values()]
        if protocol == "cold"
        else [result["test_result"]["recall@10"]]
    )
    assert all(0 < s <= 1 for s in scores)
