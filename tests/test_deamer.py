"""DEAMER (issue 8): trains on real amazon-mi and lfm2k slices with falling loss, serves the
exposure for ranking and the rating for RMSE, modality switches, checkpoints, determinism."""

import pytest
import torch
from recbole.utils import init_seed

from recbole_hybrid.config import Config
from recbole_hybrid.data.content import ContentError
from recbole_hybrid.quick_start import prepare

from helpers import assert_checkpoint_round_trip, assert_same_seed_same_metrics

pytestmark = pytest.mark.usefixtures("in_tmp", "raw_data_root")

SMALL = {
    "d2v_dim": 16,
    "d2v_epochs": 2,
    "hidden_size": 16,
    "embedding_size": 8,
    "train_batch_size": 256,
    "epochs": 2,
    "show_progress": False,
    "state": "ERROR",
    "max_doc_units": 8,
    "eval_batch_size": 4096,
}


def build(dataset="amazon-mi", **overrides):
    config = Config("DEAMER", dataset, config_dict=dict(SMALL, **overrides))
    init_seed(config["seed"], config["reproducibility"])
    return prepare(config)


def batches(loader, n):
    out = []
    for i, batch in enumerate(loader):
        if i == n:
            break
        out.append(batch)
    return out


def loss_falls(model, loader, steps=30):
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    fixed = batches(loader, 2)
    model.train()
    torch.manual_seed(0)
    before = sum(model.calculate_loss(b).item() for b in fixed)
    for _ in range(steps // 2):
        for batch in fixed:
            optimizer.zero_grad()
            model.calculate_loss(batch).backward()
            optimizer.step()
    torch.manual_seed(0)
    after = sum(model.calculate_loss(b).item() for b in fixed)
    return before, after


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["cascade", "parallel"])
def test_loss_falls_on_amazon_mi(architecture):
    _, (train, _, _), model, _ = build(protocol="loo99", architecture=architecture)
    before, after = loss_falls(model, train)
    assert after < 0.8 * before, (before, after)


def test_loss_falls_on_lfm2k_with_dense_modality():
    _, (train, _, _), model, _ = build("lfm2k", protocol="recbole")
    assert set(model.item_parts) == {"meta", "dense"} and not hasattr(model, "rating_out")
    before, after = loss_falls(model, train)
    assert after < 0.8 * before, (before, after)


@pytest.mark.slow
def test_predict_serves_exposure_or_rating():
    _, (_, valid, _), model, _ = build(protocol="loo-rating")
    assert model.predict_rating
    model.eval()
    batch = next(iter(valid))[0]
    with torch.no_grad():
        ratings = model.predict(batch)
    assert ratings.min() >= 1.0 and ratings.max() <= 5.0
    model.predict_rating = False
    model.train(False)
    with torch.no_grad():
        exposure = model.predict(batch)
    assert exposure.min() >= 0 and exposure.max() <= 1 and not torch.allclose(exposure, ratings)


@pytest.mark.slow
def test_rating_starts_at_the_training_mean_and_bias_reg_penalises():
    _, (train, _, _), model, _ = build(protocol="loo-rating")
    ratings = train._dataset.inter_feat["rating"].float()
    model.eval()
    batch = next(iter(train))
    with torch.no_grad():
        assert abs(float(model.predict(batch).mean()) - float(ratings.mean())) < 0.1
    model.train()
    with torch.no_grad():
        b_u, b_v = model._rating_biases(
            model.user_embedding(batch[model.USER_ID]), model.item_embedding(batch[model.ITEM_ID])
        )
    expected = 0.5 * float((b_u.pow(2) + b_v.pow(2)).mean())
    init_seed(7, True)
    plain = float(model.calculate_loss(batch))
    model.bias_reg = 0.5
    init_seed(7, True)
    assert float(model.calculate_loss(batch)) - plain == pytest.approx(expected, rel=1e-3, abs=1e-6)


@pytest.mark.slow
def test_modalities_switch_encoders():
    _, _, model, _ = build(protocol="loo99", modalities=["D"])
    assert set(model.item_parts) == {"reviews"} and not hasattr(model, "rating_out")
    _, _, model, _ = build(protocol="loo99", modalities=["D", "M", "R"])
    assert set(model.item_parts) == {"reviews", "meta"} and hasattr(model, "rating_out")
    with pytest.raises(ContentError, match="dense_field"):
        build(protocol="loo99", modalities=["D", "I"])
    with pytest.raises(ValueError, match="D is required"):
        build(protocol="loo99", modalities=["M", "R"])
    with pytest.raises(ValueError, match="predicts no ratings"):
        build(protocol="loo-rating", modalities=["D", "M"])


@pytest.mark.slow
def test_checkpoint_round_trip(tmp_path):
    _, (train, valid, _), model, trainer = build(protocol="loo99", epochs=1)
    trainer.fit(train, valid, saved=False)
    _, _, fresh, _ = build(protocol="loo99")  # same split, untrained
    assert_checkpoint_round_trip(model, fresh, next(iter(valid))[0], tmp_path / "deamer.pth")


@pytest.mark.slow
def test_same_seed_same_metrics():
    assert_same_seed_same_metrics("DEAMER", "amazon-mi", dict(SMALL, protocol="loo99", epochs=1))


@pytest.mark.slow
def test_training_pair_never_reads_its_own_review():
    _, (train, _, _), model, _ = build(protocol="loo99", dropout_prob=0.0, own_review="exclude")
    batch = next(iter(train))
    users, items = batch[model.USER_ID][:20], batch[model.ITEM_ID][:20]
    own = model.own_review(users, items)
    assert (own > 0).all()  # every training pair has its review (amazon-mi: 7 empty texts aside)
    model.train()
    with torch.no_grad():
        before = model._pairs(users, items, own)
        before_with_own = model._pairs(users, items)
        for encoder in (model.user_text, model.item_parts["reviews"]):
            encoder.units.weight[own] += 1.0
        assert torch.allclose(model._pairs(users, items, own), before, atol=1e-6)
        assert not torch.allclose(model._pairs(users, items), before_with_own)
    _, _, model, _ = build(protocol="loo99", own_review="include")
    assert model.own_review is None
