"""Training-split options (recbole_hybrid/data/training_split.py): ``rating_rescale`` (BCE models
on ratings, RMSE / MAE on the rating scale) and ``max_item_train_ratings`` (Fig. 4 of LRMM),
on RecBole's ml-100k with the rating protocol."""

import numpy as np
import pytest
import torch
from recbole.utils import init_seed

from recbole_hybrid.config import Config
from recbole_hybrid.quick_start import evaluate_test, prepare

pytestmark = pytest.mark.usefixtures("in_tmp")

QUIET = {"state": "ERROR", "show_progress": False, "protocol": "rating"}


def build(model="NeuMF", **overrides):
    config = Config(model, "ml-100k", config_dict=dict(QUIET, **overrides))
    init_seed(config["seed"], config["reproducibility"])
    return prepare(config)


def labels(loader, field="rating"):
    return loader._dataset.inter_feat[field].float()


def pairs(dataset):
    feat = dataset.inter_feat
    return set(zip(feat[dataset.uid_field].tolist(), feat[dataset.iid_field].tolist()))


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["NeuMF", "DeepFM"])
def test_rating_rescale_trains_on_0_1_and_scores_on_the_rating_scale(model_name):
    _, (train, valid, test), model, trainer = build(model_name, rating_rescale=True, epochs=1)
    assert labels(train).min() == 0.0 and labels(train).max() == 1.0
    for loader in (valid, test):  # held-out labels stay on 1-5
        assert set(labels(loader).unique().tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    trainer.fit(train, valid, saved=False)
    result = evaluate_test(trainer, test, load_best_model=False)
    model.eval()
    predictions, truth = [], []
    with torch.no_grad():
        for batch in test:
            interaction = batch[0]
            predictions.append(model.predict(interaction))
            truth.append(interaction["rating"].float())
    predictions, truth = torch.cat(predictions), torch.cat(truth)
    assert predictions.min() >= 1.0 and predictions.max() <= 5.0
    assert predictions.max() - predictions.min() > 0.1  # not a constant
    assert abs(result["rmse"] - (predictions - truth).pow(2).mean().sqrt().item()) < 1e-3
    assert abs(result["mae"] - (predictions - truth).abs().mean().item()) < 1e-3
    assert result["rmse"] < 1.5  # on [0, 1] against labels 1-5 it would be >= 2


def test_without_rating_rescale_labels_are_untouched():
    _, (train, _, _), model, _ = build(epochs=1)
    assert labels(train).min() == 1.0 and not hasattr(model, "label_range")


@pytest.mark.slow
def test_max_item_train_ratings_caps_training_only():
    _, (train, valid, test), _, _ = build("BiasMF")
    _, (train3, valid3, test3), _, _ = build("BiasMF", max_item_train_ratings=3)
    items = train.dataset.inter_feat["item_id"].numpy()
    items3 = train3.dataset.inter_feat["item_id"].numpy()
    before, after = np.bincount(items, minlength=2000), np.bincount(items3, minlength=2000)
    assert after.max() == 3 and np.array_equal(after, np.minimum(before, 3))
    assert pairs(train3.dataset) < pairs(train.dataset)
    assert pairs(valid3.dataset) == pairs(valid.dataset) and pairs(test3.dataset) == pairs(
        test.dataset
    )
    _, (again, _, _), _, _ = build("BiasMF", max_item_train_ratings=3)
    assert pairs(again.dataset) == pairs(train3.dataset)  # seeded


def test_max_item_train_ratings_zero_is_a_clear_error():
    with pytest.raises(ValueError, match="no training interaction"):
        build("BiasMF", max_item_train_ratings=0)
