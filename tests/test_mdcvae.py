"""MDCVAE / MDsymCVAE (issue 5): training stages, the symmetric tie, new items without
retraining, checkpoints, determinism, cold-start scoring from content."""

import numpy as np
import pytest
import torch

from recbole.utils import init_seed

from recbole_hybrid.config import Config
from recbole_hybrid.quick_start import prepare

from helpers import assert_same_seed_same_metrics


SMALL = {
    "show_progress": False,
    "state": "ERROR",
    "epochs": 2,
    "pretrain_epochs": 2,
    "pretrain_layer_epochs": 1,
    "pretrain_latent_epochs": 1,
    "latent_dimension": 32,
    "content_hidden_sizes": [32],
    "train_batch_size": 256,
    "content_batch_size": 512,
    "learning_rate": 0.003,
    "metrics": ["Recall", "NDCG"],
    "topk": [20],
    "valid_metric": "ndcg@20",
}


pytestmark = pytest.mark.usefixtures("in_tmp")


def build(model="MDCVAE", dataset="ml-100k", **overrides):
    config = Config(model, dataset, config_dict=dict(SMALL, **overrides))
    init_seed(config["seed"], config["reproducibility"])
    _, loaders, model, trainer = prepare(config)
    return loaders, model, trainer


def snapshot(params):
    return [p.detach().clone() for p in params]


def same(before, params):
    return all(torch.equal(a, b.detach()) for a, b in zip(before, params))


@pytest.mark.slow
def test_losses_decrease_on_ml100k():
    (train, _, _), model, trainer = build()
    trainer.pretrain()
    model.total_anneal_steps = 10**9  # beta ~ 0: compare the likelihood terms alone
    first = trainer._train_epoch(train, 0)
    for epoch in range(1, 6):
        last = trainer._train_epoch(train, epoch)
    assert last[0] < first[0]  # multinomial NLL of the user VAE (b-step)
    assert last[-1] < first[-1]  # content VAE's t-step loss


def test_b_step_and_t_step_touch_only_their_half():
    (train, _, _), model, trainer = build("MDsymCVAE")
    trainer.pretrain()
    content, user = list(model.content_vae.parameters()), model.user_vae_parameters()
    assert {id(p) for p in content}.isdisjoint({id(p) for p in user})
    c0, u0 = snapshot(content), snapshot(user)
    trainer.b_step(train, 0)
    assert same(c0, content) and not same(u0, user)
    c1, u1 = snapshot(content), snapshot(user)
    trainer.t_step(0)
    assert same(u1, user) and not same(c1, content)


def test_symmetric_encoder_shares_storage_with_V():
    _, model, _ = build("MDsymCVAE")
    w = model.encoder_item_weight
    assert w is model.V and w.data_ptr() == model.V.data_ptr()
    assert not any(name.startswith("W_in") for name, _ in model.named_parameters())
    rating = torch.zeros(1, model.n_items)
    rating[0, [5, 9]] = 1.0
    model.eval()
    mu, _ = model.encode(rating)
    mu.sum().backward()  # encoder alone: the gradient reaches V's rows of the user's items
    rows = model.V.grad.abs().sum(1)
    assert rows[5] > 0 and rows[9] > 0 and rows[7] == 0
    with torch.no_grad():
        model.V[5] += 1.0  # editing V changes what the encoder infers
    assert not torch.equal(model.encode(rating)[0], mu)


def test_new_items_without_retraining_keep_old_scores():
    (train, _, _), model, trainer = build("MDsymCVAE")
    trainer.fit(train, saved=False)
    model.eval()
    users = torch.arange(1, 30)
    from recbole.data.interaction import Interaction

    batch = Interaction({model.USER_ID: users})
    before = model.full_sort_predict(batch).view(len(users), -1).clone()
    n_old = model.n_items
    new_content = model.content_matrix[[3, 10, 42]]  # three "new" items with known content
    rating = model.get_rating_matrix(users)
    scored = model.score_users(rating, new_content)
    assert scored.shape == (len(users), n_old + 3)
    assert torch.equal(scored[:, :n_old], before)
    ids = model.add_items(new_content)
    assert ids.tolist() == [n_old, n_old + 1, n_old + 2] and model.n_items == n_old + 3
    after = model.full_sort_predict(batch).view(len(users), -1)
    assert torch.equal(after[:, :n_old], before)
    assert torch.allclose(after[:, n_old:], scored[:, n_old:], atol=1e-5)  # same V_surr rows
    # a new item's embedding is its content's mu_t: same content, same V row
    assert torch.allclose(model.V[n_old + 1], model.content_means([10])[0], atol=1e-6)


def test_hidden_layers_pretrained_once_across_latent_sizes(tmp_path, monkeypatch):
    """A search over latent sizes trains the content VAE's hidden layers once: other sizes and
    MDsym-CVAE load them and get the content VAE that a run without the cache trains (same
    weights, same random stream for the stages after them)."""
    from recbole_hybrid.model.pretrain import HiddenLayers

    trained, train_hidden = [], HiddenLayers.pretrain

    def counted(self, *args, **kwargs):
        trained.append(1)
        return train_hidden(self, *args, **kwargs)

    monkeypatch.setattr(HiddenLayers, "pretrain", counted)

    def content_vae(model, latent, cache, **overrides):
        config = dict(latent_dimension=latent, checkpoint_dir=str(tmp_path / cache), **overrides)
        _, vae_model, trainer = build(model, **config)
        trainer.pretrain()
        return vae_model.content_vae.state_dict()

    content_vae("MDCVAE", 64, "shared")
    for model in ("MDCVAE", "MDsymCVAE"):
        loaded = content_vae(model, 32, "shared")
        fresh = content_vae(model, 32, "fresh", pretrain_cache=False)
        assert all(torch.equal(loaded[k], fresh[k]) for k in fresh)
    assert len(trained) == 1 + 2  # the first search run, then the two runs without the cache
    assert len(list((tmp_path / "shared" / "pretrain").glob("hidden-*.pth"))) == 1
    assert len(list((tmp_path / "shared" / "pretrain").glob("pretrain-*.pth"))) == 3


@pytest.mark.slow
def test_checkpoint_save_and_load_give_identical_predictions():
    (train, valid, _), model, trainer = build("MDCVAE")
    trainer.fit(train, valid, saved=True)
    from recbole.data.interaction import Interaction

    batch = Interaction({model.USER_ID: torch.arange(1, 40)})
    checkpoint = torch.load(trainer.saved_model_file, weights_only=False)
    (_, _, _), fresh, _ = build("MDCVAE")
    fresh.load_state_dict(checkpoint["state_dict"])
    fresh.load_other_parameter(checkpoint.get("other_parameter"))
    fresh.eval()
    # the saved checkpoint is the best epoch's; reload it into the trained model too
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    assert torch.equal(fresh.full_sort_predict(batch), model.full_sort_predict(batch))


@pytest.mark.slow
def test_same_seed_same_metrics():
    assert_same_seed_same_metrics("MDsymCVAE", "ml-100k", SMALL)


def cold_recall(model, trainer, loader, metric="recall@20"):
    model.invalidate_cache()
    return trainer.evaluate(loader, load_best_model=False)[metric]


@pytest.mark.slow
def test_cold_items_scored_from_content_ml100k():
    (train, valid, tests), model, trainer = build("MDsymCVAE", protocol="cold")
    assert len(model.content_only_items()) > 0  # the cold items: content, no training interaction
    trainer.fit(train, valid, saved=False)
    assert 0 < cold_recall(model, trainer, tests["cold"]) <= 1


@pytest.mark.slow
def test_cold_start_uses_content_citeulike_a(raw_data_root, tmp_path):
    """Shuffling the cold items' content among them drops cold recall to about random."""
    (train, valid, tests), model, trainer = build(
        "MDsymCVAE",
        "citeulike-a",
        protocol="cold",
        epochs=4,
        pretrain_epochs=4,
        pretrain_layer_epochs=3,
        pretrain_latent_epochs=3,
        data_path=str(tmp_path / "dataset"),
        latent_dimension=64,
        content_hidden_sizes=[64],
        lambda_v=10.0,
        content_fields=["bow"],
        train_batch_size=256,
        content_batch_size=256,
        content_learning_rate=0.003,
        pretrain_learning_rate=0.01,
        topk=[100],
        valid_metric="ndcg@100",
    )
    trainer.fit(train, valid, saved=False)
    cold = model.content_only_items()
    loader = tests["cold"]
    real = cold_recall(model, trainer, loader, "recall@100")
    rng = np.random.default_rng(0)
    content = model.content_matrix.tolil()
    content[cold] = content[rng.permutation(cold)]
    model.content_matrix = content.tocsr()
    shuffled = cold_recall(model, trainer, loader, "recall@100")
    random_recall = 100 / len(cold)  # expected recall@100 of a random ranking of the cold items
    assert real > 1.5 * random_recall and real > 1.5 * shuffled, (real, shuffled, random_recall)
    assert shuffled < 1.3 * random_recall, (shuffled, random_recall)
