"""CVAE: vectorised ALS against the per-row formula, training, cold start, checkpoints."""

import os

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recbole_hybrid.config import Config
from recbole_hybrid.data.content import ContentError
from recbole_hybrid.model.general_recommender.cvae import (
    confidence_weighted_solve,
    normalize_content,
)
from recbole_hybrid.quick_start import prepare
from recbole_hybrid.utils import get_trainer

from helpers import assert_same_seed_same_metrics

QUICK = {
    "state": "ERROR",
    "show_progress": False,
    "epochs": 2,
    "pretrain_epochs": 2,
    "pretrain_layer_epochs": 1,
    "pretrain_latent_epochs": 1,
    "content_field": "class",
    "metrics": ["Recall", "NDCG"],
    "topk": [10, 20],
    "valid_metric": "recall@20",
}


@pytest.mark.parametrize("lam", [10.0, -0.05])  # -0.05: some systems indefinite (LU path)
def test_als_matches_per_row_solution(lam):
    rng = np.random.default_rng(0)
    R = sp.csr_matrix((rng.random((30, 12)) < 0.2).astype(np.float32))
    R[5] = 0  # a row without interactions: only the prior remains
    R.eliminate_zeros()
    Y = torch.from_numpy(rng.normal(size=(12, 4)).astype(np.float32))
    prior = torch.from_numpy(rng.normal(size=(30, 4)).astype(np.float32))
    a, b = 1.0, 0.01
    got = confidence_weighted_solve(R, Y, lam, a, b, prior=prior)
    y = Y.double().numpy()
    active = y[np.asarray(R.getnnz(axis=0) > 0)]
    for r in range(30):
        cols = R[r].indices
        A = b * active.T @ active + (a - b) * y[cols].T @ y[cols] + lam * np.eye(4)
        x = np.linalg.solve(A, a * y[cols].sum(0) + lam * prior[r].double().numpy())
        assert np.allclose(got[r].numpy(), x, rtol=1e-4, atol=1e-4)


def test_content_normalisation():
    counts = sp.csr_matrix(np.array([[2, 0, 4], [1, 3, 0]], dtype=np.float32))
    by_word, scale = normalize_content(counts, "word_max")
    assert np.allclose(by_word.toarray(), [[1, 0, 1], [0.5, 1, 0]]) and np.allclose(
        scale, [2, 3, 4]
    )
    by_item, _ = normalize_content(counts, "max")
    assert np.allclose(by_item.toarray(), [[0.5, 0, 1], [1 / 3, 1, 0]])
    present, _ = normalize_content(counts, "binary")
    assert np.allclose(present.toarray(), [[1, 0, 1], [1, 1, 0]]) and np.allclose(
        counts.toarray()[0], [2, 0, 4]
    )
    with pytest.raises(ValueError, match="content_norm"):
        normalize_content(counts, "tfidf")


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["max", "word_max", "binary"])
def test_new_items_are_normalised_as_the_training_items(norm):
    """A new item with a training item's words gets that item's mu: max whatever the count
    scale, binary whatever the counts, word_max with the training items' per-word scale."""
    config = Config("CVAE", "ml-100k", config_dict=dict(QUICK, content_norm=norm))
    dataset, _, model, _ = prepare(config)
    content = dataset.item_content("class").to_scipy().tocsr()
    items = [i for i in model.content_items() if content[i].nnz >= 2][:5]
    raw = content[items].astype(np.float32)
    if norm == "max":
        raw = raw * 3
    if norm == "binary":
        raw.data[::2] = 5  # uneven counts within each row
    assert torch.allclose(model.new_item_vectors(raw), model.content_means(items), atol=1e-5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    config = Config(
        "CVAE",
        "ml-100k",
        config_dict=dict(QUICK, checkpoint_dir=str(tmp_path_factory.mktemp("saved"))),
    )
    dataset, (train, valid, test), model, _ = prepare(config)
    trainer = get_trainer(config["MODEL_TYPE"], "CVAE")(config, model)
    best, _ = trainer.fit(train, valid, saved=True)
    return config, dataset, (train, valid, test), model, trainer


@pytest.mark.slow
def test_trains_through_recbole_and_beats_popularity(trained):
    config, _, (_, _, test), model, trainer = trained
    result = trainer.evaluate(test, load_best_model=True)
    _, (_, _, pop_test), _, pop_trainer = prepare(Config("MostPop", "ml-100k", config_dict=QUICK))
    assert result["recall@20"] > pop_trainer.evaluate(pop_test, load_best_model=False)["recall@20"]


def test_checkpoint_round_trip(trained):
    config, dataset, (train, _, test), model, trainer = trained
    checkpoint = torch.load(trainer.saved_model_file, weights_only=False)
    fresh = type(model)(config, train._dataset)
    fresh.load_state_dict(checkpoint["state_dict"])
    batch = next(iter(test))[0]
    assert torch.equal(fresh.full_sort_predict(batch), model.full_sort_predict(batch))


def new_item_scores(model, users, content):
    """Scores of known ``users`` for new items of raw ``content`` (score_users' new columns)."""
    history = model.user_matrix[users.numpy()]
    return model.score_users(history, content, users=users)[:, model.n_items :]


def test_new_items_scored_from_content(trained):
    config, dataset, (train, _, _), model, _ = trained
    content = dataset.item_content("class").to_scipy()
    items = np.array([5, 17, 40])
    users = torch.tensor([1, 2, 3])
    scores = new_item_scores(model, users, content[items])
    expected = model.U[users] @ model.theta[torch.from_numpy(items)].T
    assert torch.allclose(scores, expected, atol=1e-5)
    with pytest.raises(ContentError, match="trained on"):
        new_item_scores(model, users, sp.csr_matrix((3, content.shape[1] + 1)))


def test_items_without_training_interactions_use_content_mean(trained):
    _, _, _, model, _ = trained
    vectors = model.item_vectors()
    cold = torch.nonzero(~model.has_train).flatten()
    warm = torch.nonzero(model.has_train).flatten()
    assert len(cold) and torch.equal(vectors[cold], model.theta[cold])
    assert torch.equal(vectors[warm], model.V[warm])


def test_untrained_items_als_follow_the_authors_code(trained):
    """``untrained_items: als``: an item without training interactions has v_j = (b U_+^T U_+ +
    lambda_v I)^-1 lambda_v mu_j, as do new items, and the VAE is pulled toward it."""
    _, dataset, _, model, _ = trained
    model.untrained_items = "als"
    saved = model.U.clone(), model.V.clone()
    try:
        model.als_sweep()
        cold = torch.nonzero(~model.has_train & torch.from_numpy(model.has_content)).flatten()
        U = model.U.double()[torch.from_numpy(model.item_matrix.getnnz(axis=0) > 0)]
        A = model.b * U.T @ U + model.lambda_v * torch.eye(model.k, dtype=torch.float64)
        expected = torch.linalg.solve(A, model.lambda_v * model.theta[cold].double().T).T
        assert torch.allclose(model.item_vectors()[cold].double(), expected, atol=1e-5)
        assert not torch.allclose(expected, model.theta[cold].double(), atol=1e-3)
        items = cold[:3].numpy()
        new = model.new_item_vectors(dataset.item_content("class").to_scipy()[items])
        assert torch.allclose(new.double(), expected[:3], atol=1e-4)
        # the pull covers the untrained items: moving their V changes the loss (not under mu)
        for mode, moves in (("als", True), ("mu", False)):
            model.untrained_items = mode
            torch.manual_seed(0)
            before = model.content_loss(items)
            model.V[cold[:3]] += 1.0
            torch.manual_seed(0)
            after = model.content_loss(items)
            model.V[cold[:3]] -= 1.0
            assert (not torch.isclose(before, after)) == moves
    finally:
        model.untrained_items = "mu"
        model.U.copy_(saved[0])
        model.V.copy_(saved[1])


@pytest.mark.slow
def test_pretraining_is_cached_and_reused(tmp_path):
    config = Config("CVAE", "ml-100k", config_dict=dict(QUICK, checkpoint_dir=str(tmp_path)))
    _, _, first, first_trainer = prepare(config)
    first_trainer.pretrain()
    cached = list((tmp_path / "pretrain").glob("pretrain-*.pth"))
    assert len(cached) == 1 and cached[0].with_suffix(".json").is_file()
    _, _, second, second_trainer = prepare(config)
    assert not torch.equal(
        second.content_vae.mu.weight, first.content_vae.mu.weight
    )  # fresh init differs
    second_trainer.pretrain()  # loaded, not trained
    assert torch.equal(second.theta, first.theta) and torch.equal(second.V, first.V)
    other = Config(
        "CVAE", "ml-100k", config_dict=dict(QUICK, checkpoint_dir=str(tmp_path), pretrain_noise=0.5)
    )
    prepare(other)[3].pretrain()  # another setting: another cache entry
    assert len(list((tmp_path / "pretrain").glob("pretrain-*.pth"))) == 2


@pytest.mark.slow
def test_pretraining_does_not_depend_on_recboles_item_remapping(tmp_path):
    """Each split's .inter order gives RecBole another item remapping; content pretraining runs
    in external-token order, so a copy of ml-100k with its .inter rows reversed pretrains to
    the same mu per item and shares the first one's cache entry."""
    import shutil

    source = Config("CVAE", "ml-100k", config_dict={"state": "ERROR"})["data_path"]
    with open(os.path.join(source, "ml-100k.inter")) as f:
        header, *rows = f.readlines()
    for root, order in (("asis", rows), ("reversed", rows[::-1])):
        folder = tmp_path / root / "movies"
        folder.mkdir(parents=True)
        shutil.copy(os.path.join(source, "ml-100k.item"), folder / "movies.item")
        (folder / "movies.inter").write_text(header + "".join(order))

    def pretrained_means(root, cache, **settings):
        config = Config(
            "CVAE",
            "movies",
            config_dict=dict(
                QUICK,
                data_path=str(tmp_path / root),
                checkpoint_dir=str(tmp_path / cache),
                pretrain_epochs=0,
                load_col={
                    "inter": ["user_id", "item_id", "rating", "timestamp"],
                    "item": ["item_id"],
                },
                content_fields=["class", "movie_title"],
                **settings,
            ),
        )
        dataset, _, model, trainer = prepare(config)
        trainer.pretrain()
        items = model.content_items()
        tokens = dataset.id2token(dataset.iid_field, items)
        return dict(zip(tokens, model.theta[items].numpy())), dataset.field2id_token["item_id"]

    first, first_ids = pretrained_means("asis", "saved")
    second, second_ids = pretrained_means("reversed", "saved")
    assert not np.array_equal(first_ids, second_ids)  # another remapping
    assert len(list((tmp_path / "saved" / "pretrain").glob("pretrain-*.pth"))) == 1  # shared
    assert all(np.array_equal(first[t], second[t]) for t in first)
    uncached, _ = pretrained_means(
        "reversed", "none", pretrain_cache=False
    )  # trained anew: the same
    assert first.keys() == second.keys() == uncached.keys()
    assert all(np.allclose(first[t], uncached[t], atol=1e-5) for t in first)


@pytest.mark.slow
def test_pretraining_cache_tells_settings_apart_when_the_whole_vae_trains(tmp_path):
    def entries(**settings):
        config = Config(
            "CVAE", "ml-100k", config_dict=dict(QUICK, checkpoint_dir=str(tmp_path), **settings)
        )
        prepare(config)[3].pretrain()
        return len(list((tmp_path / "pretrain").glob("pretrain-*.pth")))

    assert entries(content_likelihood="bernoulli") == 1
    assert entries(content_likelihood="multinomial") == 2  # whole-VAE epochs use the likelihood
    assert entries(content_likelihood="bernoulli", pretrain_epochs=0) == 3
    assert (
        entries(content_likelihood="multinomial", pretrain_epochs=0) == 3
    )  # layer-wise only: shared
    assert (
        entries(pretrain_epochs=0, lambda_r=10.0, lambda_w=0.01) == 3
    )  # they act in whole-VAE epochs only
    assert entries(lambda_r=10.0) == 4


def als_objective(model):
    """What the ALS sweep minimises (U and V given theta), over users and items with
    training interactions: sum c_ij/2 (r_ij - u_i.v_j)^2 + lambda_u/2 |U|^2
    + lambda_v/2 |V - theta|^2."""
    R = torch.from_numpy(model.train_matrix.toarray()).double()
    users, items = R.sum(1) > 0, R.sum(0) > 0
    R = R[users][:, items]
    U, V, theta = model.U[users].double(), model.V[items].double(), model.theta[items].double()
    C = model.b + (model.a - model.b) * R
    fit = (C * (R - U @ V.T) ** 2).sum() / 2
    return (
        fit + model.lambda_u / 2 * (U**2).sum() + model.lambda_v / 2 * ((V - theta) ** 2).sum()
    ).item()


@pytest.mark.slow
def test_als_sweeps_never_raise_the_objective(tmp_path):
    config = Config("CVAE", "ml-100k", config_dict=dict(QUICK, checkpoint_dir=str(tmp_path)))
    _, _, model, trainer = prepare(config)
    trainer.pretrain()
    values = [als_objective(model)]
    for _ in range(4):
        model.als_sweep()
        values.append(als_objective(model))
    assert all(b <= a * (1 + 1e-6) for a, b in zip(values, values[1:])), values
    assert values[-1] < 0.5 * values[0]  # and it does descend from the random U


def test_cold_item_scores_follow_their_content(trained):
    _, dataset, _, model, _ = trained
    content = dataset.item_content("class").to_scipy()
    users = torch.arange(1, 50)
    scores = new_item_scores(model, users, content[[5, 17, 40, 41]])
    assert scores.std(1).min() > 0  # not constant over items
    same_content = new_item_scores(model, users, content[[5, 5]])
    assert torch.allclose(same_content[:, 0], same_content[:, 1])
    assert not torch.allclose(scores[:, 0], scores[:, 1])


@pytest.mark.slow
def test_same_seed_same_metrics(tmp_path):
    settings = dict(QUICK, checkpoint_dir=str(tmp_path), pretrain_cache=False)
    assert_same_seed_same_metrics("CVAE", "ml-100k", settings)
