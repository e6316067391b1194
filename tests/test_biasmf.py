"""BiasMF (rating regression) and the loo-rating protocol on ml-100k (RecBole wheel)."""

import numpy as np
import pytest
import torch
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.trainer import Trainer
from recbole.utils import InputType

from helpers import assert_same_seed_same_metrics
from recbole_hybrid.config import Config
from recbole_hybrid.data import create_dataset, data_preparation
from recbole_hybrid.quick_start import prepare, run_recbole_hybrid

pytestmark = pytest.mark.usefixtures("in_tmp")

# ratings on their 1..5 scale (RecBole's ml-100k.yaml min-max normalises float fields)
QUICK = {
    "epochs": 2,
    "show_progress": False,
    "state": "ERROR",
    "train_batch_size": 1024,
    "learning_rate": 0.01,
    "normalize_all": False,
}
MEAN = {"embedding_size": 0, "biases": False}
BIAS = {"embedding_size": 0}


def build(protocol="rating", **overrides):
    config = Config("BiasMF", "ml-100k", config_dict=dict(QUICK, protocol=protocol, **overrides))
    dataset, loaders, model, trainer = prepare(config)
    return config, dataset, loaders, model, trainer


def ratings(part):
    return part.inter_feat["rating"].numpy().astype(np.float64)


def test_mu_is_the_training_mean():
    _, dataset, _, model, _ = build(**BIAS)
    split = dataset.protocol_split
    everything, valid, test = ratings(dataset), ratings(split.valid), ratings(split.tests["test"])
    train_mean = (everything.sum() - valid.sum() - test.sum()) / (
        len(everything) - len(valid) - len(test)
    )
    assert model.mu.item() == pytest.approx(train_mean, abs=1e-5)
    assert model.mu.item() == pytest.approx(ratings(split.train).mean(), abs=1e-5)
    assert 1 <= everything.min() and everything.max() == 5  # the rating scale, not [0, 1]
    assert model.rating_range.tolist() == [1.0, 5.0]
    assert "mu" in model.state_dict() and "mu" not in dict(model.named_parameters())


def test_loss_falls_and_biases_beat_the_mean():
    config, _, (train, valid, _), model, trainer = build(**BIAS)
    losses = [float(trainer._train_epoch(train, epoch)) for epoch in range(3)]
    assert losses[0] > losses[1] > losses[2]
    bias_rmse = trainer.evaluate(valid, load_best_model=False)["rmse"]
    _, _, (_, mean_valid, _), mean_model, mean_trainer = build(**MEAN)
    assert mean_model.variant == "mean" and model.variant == "bias"
    assert mean_trainer.epochs == 1  # nothing to learn (a constant score never stops early)
    mean_rmse = mean_trainer.evaluate(mean_valid, load_best_model=False)["rmse"]
    assert 1.05 < mean_rmse < 1.2  # ml-100k: the global mean's RMSE is about 1.13
    assert bias_rmse < mean_rmse - 0.1


@pytest.mark.parametrize("clip", [False, True])
def test_predict_by_hand(clip):
    _, _, (train, _, test), model, trainer = build(embedding_size=8, clip_rating=clip)
    trainer._train_epoch(train, 0)
    batch = next(iter(test))[0]
    users, items = batch["user_id"], batch["item_id"]
    with torch.no_grad():
        expected = (
            model.mu
            + model.user_bias.weight[users, 0]
            + model.item_bias.weight[items, 0]
            + (model.user_factors.weight[users] * model.item_factors.weight[items]).sum(1)
        )
        if clip:
            expected = expected.clamp(1.0, 5.0)
        got = model.predict(batch)
        full = model.full_sort_predict(batch).view(len(users), -1)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(full[torch.arange(len(users)), items], expected, atol=1e-5)
    assert model.user_bias.weight.abs().sum() > 0  # trained: biases left 0


def test_rmse_is_against_the_true_rating():
    """A model that always predicts 3: RecBole's RMSE/MAE equal the ones computed by hand
    from the held-out ratings (1..5), so the label is the rating, not a 0/1 label."""

    class ConstantThree(GeneralRecommender):
        input_type = InputType.POINTWISE

        def __init__(self, config, dataset):
            super().__init__(config, dataset)
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def predict(self, interaction):
            return torch.full((len(interaction[self.USER_ID]),), 3.0)

    for protocol in ("rating", "loo-rating"):
        config, dataset, (_, _, test), _, _ = build(protocol)
        trainer = Trainer(config, ConstantThree(config, dataset.protocol_split.train))
        result = trainer.evaluate(test, load_best_model=False)
        held = ratings(dataset.protocol_split.tests["test"])
        assert result["rmse"] == pytest.approx(np.sqrt(np.mean((held - 3) ** 2)), abs=1e-4)
        assert result["mae"] == pytest.approx(np.mean(np.abs(held - 3)), abs=1e-4)


def test_dataset_without_ratings_is_a_clear_error():
    no_rating = {"load_col": {"inter": ["user_id", "item_id", "timestamp"]}, "protocol": "recbole"}
    with pytest.raises(
        ValueError,
        match=r"BiasMF needs ratings: dataset \[ml-100k\] has no loaded rating field \[rating\]",
    ):
        run_recbole_hybrid("BiasMF", "ml-100k", config_dict=dict(QUICK, **no_rating), saved=False)
    with pytest.raises(
        ValueError, match=r"BiasMF needs ratings: dataset \[ml-100k\].*RATING_FIELD is None"
    ):
        run_recbole_hybrid(
            "BiasMF",
            "ml-100k",
            config_dict=dict(QUICK, RATING_FIELD=None, protocol="recbole"),
            saved=False,
        )


def test_labeled_evaluation_needs_the_rating_as_label():
    with pytest.raises(ValueError, match="LABEL_FIELD"):
        build(LABEL_FIELD="label")


@pytest.mark.slow
def test_checkpoint_round_trip():
    result = run_recbole_hybrid(
        "BiasMF", "ml-100k", config_dict=dict(QUICK, embedding_size=8, protocol="loo-rating")
    )
    checkpoint = torch.load(result["saved_model_file"], weights_only=False)
    config = Config(
        "BiasMF", "ml-100k", config_dict=dict(QUICK, embedding_size=8, protocol="loo-rating")
    )
    _, (_, _, test), fresh, trainer = prepare(config)  # same seed: same split
    with torch.no_grad():
        for tensor in list(fresh.parameters()) + [fresh.mu]:
            tensor.normal_()
    assert trainer.evaluate(test, load_best_model=False) != result["test_result"]
    fresh.load_state_dict(checkpoint["state_dict"])
    assert (
        fresh.mu.item() == pytest.approx(checkpoint["state_dict"]["mu"].item())
        and fresh.mu.item() > 3
    )
    assert trainer.evaluate(test, load_best_model=False) == result["test_result"]


@pytest.mark.slow
def test_same_seed_same_metrics():
    assert_same_seed_same_metrics(
        "BiasMF", "ml-100k", dict(QUICK, embedding_size=8, protocol="loo-rating")
    )


@pytest.mark.slow
def test_ranks_under_a_ranking_protocol():
    result = run_recbole_hybrid(
        "BiasMF", "ml-100k", config_dict=dict(QUICK, epochs=1, protocol="recbole"), saved=False
    )
    assert "recall@10" in result["test_result"] and result["test_result"]["recall@10"] >= 0


def test_loo_rating_holds_out_one_valid_and_one_test_rating_per_user():
    config = Config("BiasMF", "ml-100k", config_dict=dict(QUICK, protocol="loo-rating"))
    assert config["eval_args"]["mode"] == {"valid": "labeled", "test": "labeled"}
    assert (
        config["train_neg_sample_args"]["distribution"] == "none"
        and config["LABEL_FIELD"] == "rating"
    )
    dataset = create_dataset(config)
    data_preparation(config, dataset)
    split = dataset.protocol_split

    def per_user(part):
        return np.bincount(part.inter_feat["user_id"].numpy(), minlength=dataset.user_num)

    total = per_user(dataset)
    train, valid, test = per_user(split.train), per_user(split.valid), per_user(split.tests["test"])
    eligible = total >= 3
    assert eligible.sum() == dataset.user_num - 1  # every ml-100k user has >= 20 ratings
    assert (valid[eligible] == 1).all() and (test[eligible] == 1).all()
    assert (train + valid + test == total).all()
    pairs = [
        set(zip(p.inter_feat["user_id"].tolist(), p.inter_feat["item_id"].tolist()))
        for p in (split.train, split.valid, split.tests["test"])
    ]
    assert not pairs[0] & pairs[1] and not pairs[0] & pairs[2] and not pairs[1] & pairs[2]


def test_defaults_protocol_rating_without_negatives():
    config = Config("BiasMF", "ml-100k", config_dict={"state": "ERROR"})
    assert config["protocol"] == "rating" and config["metrics"] == ["RMSE", "MAE"]
    assert config["train_neg_sample_args"]["distribution"] == "none"
    assert (
        Config("BiasMF", "ml-100k", config_dict={"state": "ERROR", "protocol": "loo-rating"})[
            "protocol"
        ]
        == "loo-rating"
    )
