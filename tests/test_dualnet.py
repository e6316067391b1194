"""DualNet (issue 7): the three designs train, dual mini-batch steps touch only their side,
new items are scored from their content (not their id), unseen users from their history,
checkpoints, determinism, bad input."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from recbole.data.interaction import Interaction
from recbole.utils import init_seed

from recbole_hybrid.config import Config
from recbole_hybrid.data.content import ContentError
from recbole_hybrid.quick_start import prepare

from helpers import assert_same_seed_same_metrics

SMALL = {
    "show_progress": False,
    "state": "ERROR",
    "epochs": 2,
    "hidden_sizes": [32, 32, 16],
    "train_batch_size": 128,
    "item_batch_size": 512,
    "pretrain_layer_epochs": 1,
    "pretrain_refine_epochs": 1,
    "pretrain_cache": False,
    "metrics": ["Recall", "NDCG"],
    "topk": [20],
    "valid_metric": "ndcg@20",
}


pytestmark = pytest.mark.usefixtures("in_tmp")


def build(dataset="ml-100k", **overrides):
    config = Config("DualNet", dataset, config_dict=dict(SMALL, **overrides))
    init_seed(config["seed"], config["reproducibility"])
    _, loaders, model, trainer = prepare(config)
    return loaders, model, trainer


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def same(before, module):
    return all(torch.equal(a, b) for a, b in zip(before, module.parameters()))


def users_batch(model, n=30):
    return Interaction({model.USER_ID: torch.arange(1, n + 1)})


@pytest.mark.slow
@pytest.mark.parametrize("design", ["basic", "multilevel", "branching"])
def test_each_design_trains_with_falling_loss(design):
    (train, _, _), model, trainer = build(design=design, item_noise=0.0, user_noise=0.0)
    trainer.pretrain(train)
    losses = [trainer._train_epoch(train, epoch) for epoch in range(6)]
    assert losses[-1] < 0.8 * losses[0], losses
    dims = {"basic": 16, "multilevel": 32 + 32 + 16, "branching": 32 + 32 + 16}[design]
    assert model.all_item_vectors().shape == (model.n_items, dims)
    assert (model.user_net.branches is not None) == (design == "branching")


@pytest.mark.parametrize("update", ["alternate", "joint"])
def test_dual_steps_touch_only_their_side(update):
    (train, _, _), model, trainer = build(dual_update=update)
    block = (np.arange(1, 65), model.trained_items()[:300])
    u0, i0 = params(model.user_net), params(model.item_net)
    trainer.dual_step(block, "item")
    assert same(u0, model.user_net) and not same(i0, model.item_net)
    u1, i1 = params(model.user_net), params(model.item_net)
    trainer.dual_step(block, "user")
    assert same(i1, model.item_net) and not same(u1, model.user_net)
    u2, i2 = params(model.user_net), params(model.item_net)
    trainer.dual_step(block, "both")
    assert not same(u2, model.user_net) and not same(i2, model.item_net)


def test_alternate_epoch_steps_each_side_once_per_block(monkeypatch):
    (train, _, _), model, trainer = build(dual_update="alternate")
    sides = []
    step = trainer.dual_step
    monkeypatch.setattr(
        trainer,
        "dual_step",
        lambda block, side, depth=None: sides.append(side) or step(block, side, depth),
    )
    trainer.dual_epoch(train)
    n_users = len(np.unique(train._dataset.inter_feat[model.USER_ID].numpy()))
    n_blocks = -(-n_users // 128) * -(-len(model.trained_items()) // 512)
    assert sides == ["item", "user"] * n_blocks


def test_training_blocks_cover_trained_items_only():
    (train, _, tests), model, trainer = build(protocol="cold")
    cold = np.unique(tests["cold"]._dataset.inter_feat[model.ITEM_ID].numpy())
    assert len(cold) and not set(model.trained_items()) & set(cold.tolist())
    seen = []
    step = trainer.dual_step
    trainer.dual_step = lambda block, side, depth=None: (
        seen.append(block[1]) or step(block, side, depth)
    )
    trainer.dual_epoch(train)
    covered = np.sort(np.concatenate(seen))
    n_user_batches = len(seen) // -(-len(model.trained_items()) // 512)
    assert np.array_equal(covered, np.sort(np.tile(model.trained_items(), n_user_batches)))


@pytest.mark.slow
def test_new_item_score_depends_on_content_not_id():
    (train, _, _), model, trainer = build()
    trainer.fit(train, saved=False)
    model.eval()
    users = torch.arange(1, 30)
    history = model.history[users.numpy()].toarray()
    raw = model.content_matrix  # already normalised; normalising again changes nothing
    before = model.full_sort_predict(users_batch(model, 29)).view(len(users), -1)
    scored = model.score_users(history, raw[[3, 10, 3]])
    n = model.n_items
    assert scored.shape == (len(users), n + 3)
    assert torch.allclose(scored[:, :n], before, atol=1e-5)
    # a new item with item 10's content scores as item 10; same content, same score
    assert torch.allclose(scored[:, n + 1], before[:, 10], atol=1e-5)
    assert torch.allclose(scored[:, n], scored[:, n + 2])
    assert not torch.allclose(scored[:, n], scored[:, n + 1])
    # an item's vector is a function of its content row alone
    swapped = sp.vstack([raw[10], raw[3]]).tocsr()
    v = model.encode_items(swapped)
    assert torch.allclose(v[0], model.all_item_vectors()[10], atol=1e-6)
    with pytest.raises(ContentError, match="columns"):
        model.score_users(history, np.ones((1, raw.shape[1] + 1)))


@pytest.mark.parametrize("norm", ["tfidf", "max"])
def test_new_content_normalised_with_training_statistics(norm):
    """A new item's raw content gets the training items' weighting (tfidf: their idf), so
    the raw row of item j becomes exactly item j's input; the idf is in the checkpoint."""
    (train, _, _), model, _ = build(content_norm=norm)
    raw = model.item_content(train._dataset).to_scipy()
    rows = [3, 10, 42]
    new = model.normalize_content(raw[rows])
    assert np.allclose(new.toarray(), model.content_matrix[rows].toarray(), atol=1e-6)
    assert ("content_idf" in model.state_dict()) and (model.content_idf.numel() > 0) == (
        norm == "tfidf"
    )


@pytest.mark.slow
def test_unseen_users_encoded_from_fold_in_history():
    (train, valid, test), model, trainer = build(protocol="strong")
    trainer.fit(train, valid, saved=False)
    trained_users = set(np.unique(train._dataset.inter_feat[model.USER_ID].numpy()).tolist())
    test_users = np.unique(test._dataset.inter_feat[model.USER_ID].numpy())
    assert not trained_users & set(test_users.tolist())
    user = int(test_users[0])
    assert model.history[user].nnz > 0  # her fold-in items
    model.eval()
    by_id = model.full_sort_predict(Interaction({model.USER_ID: torch.tensor([user])}))
    by_history = model.encode_users(model.history[[user]]) @ model.all_item_vectors().t()
    assert torch.allclose(by_id, by_history.view(-1), atol=1e-5)
    result = trainer.evaluate(test, load_best_model=False)
    assert 0 < result["recall@20"] <= 1


def test_items_without_content_share_one_vector():
    """Documented fallback: an empty document is encoded like any input (one shared vector)."""
    (train, _, _), model, _ = build()
    empty = sp.csr_matrix((2, model.content_matrix.shape[1]), dtype=np.float32)
    v = model.encode_items(empty)
    assert torch.equal(v[0], v[1]) and torch.isfinite(v).all()


def test_bad_settings_rejected():
    with pytest.raises(ValueError, match="design"):
        build(design="deep")
    with pytest.raises(ValueError, match="dual_update"):
        build(dual_update="sometimes")


@pytest.mark.slow
def test_checkpoint_round_trip():
    (train, valid, _), model, trainer = build()
    trainer.fit(train, valid, saved=True)
    checkpoint = torch.load(trainer.saved_model_file, weights_only=False)
    _, fresh, _ = build()
    fresh.load_state_dict(checkpoint["state_dict"])
    model.load_state_dict(checkpoint["state_dict"])
    fresh.eval(), model.eval()
    batch = users_batch(model)
    assert torch.equal(fresh.full_sort_predict(batch), model.full_sort_predict(batch))


@pytest.mark.slow
def test_same_seed_same_metrics():
    assert_same_seed_same_metrics("DualNet", "ml-100k", SMALL)


@pytest.mark.slow
def test_cold_items_ranked_from_real_text_citeulike_a(raw_data_root, tmp_path):
    """Cold items scored by the item network on real text: shuffling their content among
    them drops cold recall to about random."""
    (train, valid, tests), model, trainer = build(
        "citeulike-a",
        protocol="cold",
        data_path=str(tmp_path / "dataset"),
        content_fields=["bow"],
        hidden_sizes=[64, 64, 32],
        epochs=3,
        pretrain_layer_epochs=0,
        pretrain_refine_epochs=0,
        train_batch_size=512,
        item_batch_size=2048,
        topk=[100],
        valid_metric="ndcg@100",
    )
    trainer.fit(train, valid, saved=False)
    loader = tests["cold"]
    cold = np.unique(loader._dataset.inter_feat[model.ITEM_ID].numpy())
    real = trainer.evaluate(loader, load_best_model=False)["recall@100"]
    content = model.content_matrix.tolil()
    content[cold] = content[np.random.default_rng(0).permutation(cold)]
    model.content_matrix = content.tocsr()
    model.train(False)  # drops the item cache
    shuffled = trainer.evaluate(loader, load_best_model=False)["recall@100"]
    random_recall = 100 / len(cold)
    assert real > 1.5 * random_recall and real > 1.5 * shuffled, (real, shuffled, random_recall)
    assert shuffled < 1.3 * random_recall, (shuffled, random_recall)


@pytest.mark.slow
def test_pretraining_loaded_from_the_cache_gives_the_run_without_it(tmp_path):
    """The item network's layer-wise pretraining, loaded from the cache, leaves the refinement
    after it the random stream it has after training it: a run with a cache hit ends with the
    weights of a run without the cache (a benchmark draw that reused a tuning trial's cache
    gave other numbers than the same process run from scratch)."""

    def pretrained(cache, use_cache=True):
        settings = dict(checkpoint_dir=str(tmp_path / cache), pretrain_cache=use_cache)
        (train, _, _), model, trainer = build(**settings)
        trainer.pretrain(train)
        return model.state_dict()

    pretrained("shared")  # trains the item network and saves it
    loaded = pretrained("shared")
    fresh = pretrained("fresh", use_cache=False)
    assert list((tmp_path / "shared" / "pretrain").glob("pretrain-*.pth"))
    assert all(torch.equal(loaded[k], fresh[k]) for k in fresh)
