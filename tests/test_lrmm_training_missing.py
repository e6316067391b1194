"""LRMM trained on incomplete data: modalities missing from the training data
(``train_missing_prob``, the paper's Table 3) and fewer reviews / ratings per item
(``max_item_reviews``, ``max_item_train_ratings``, Fig. 4); amazon-mi, protocol rating."""

import numpy as np
import pytest
import torch

from recbole_hybrid.data.reviews import EMPTY_TOKENS, cap_groups

from test_lrmm import build, pairs, replace_input

pytestmark = pytest.mark.usefixtures("in_tmp", "raw_data_root")


def data_availability(model, users, items):
    return torch.stack(
        [model.encoders[g].mask(users if g == "U" else items) for g in model.modalities], 1
    )


def review_counts(dataset, field):
    """Training reviews with text per user or item id."""
    texts = dataset.field2id_token["review"][dataset.inter_feat["review"].numpy()]
    rows = dataset.inter_feat[field].numpy()[~np.isin(texts, EMPTY_TOKENS)]
    return np.bincount(rows, minlength=dataset.num(field))


@pytest.mark.slow
def test_train_missing_modalities_rate_seed_and_loss():
    _, (train, _, _), model, _ = build(train_missing_prob=0.5, dropout_prob=0.0)
    feat = train.dataset.inter_feat
    users, items = feat["user_id"], feat["item_id"]
    available = data_availability(model, users, items)
    absent = model.training_absent(users, items)
    assert not (absent & ~available).any()
    assert (available & ~absent).any(1)[available.any(1)].all()  # one modality always kept
    full = available.all(1)
    assert abs(absent[full].float().mean().item() - 0.5) < 0.02  # the configured rate
    assert abs(absent[available].float().mean().item() - 0.5) < 0.05
    table, seed = model.absent_table.clone(), train.dataset.config["seed"]
    model._init_train_missing(0.5, seed, train.dataset)  # the same draw from the same seed
    assert torch.equal(model.absent_table, table)
    model._init_train_missing(0.5, seed + 1, train.dataset)
    assert not torch.equal(model.absent_table, table)
    model._init_train_missing(0.5, seed, train.dataset)

    model.train()
    batch = next(iter(train))
    absent = model.training_absent(*pairs(batch, model))

    def loss(part):
        torch.manual_seed(0)  # the same m-drop draws
        with torch.no_grad():
            return model.calculate_loss(part)

    for j, g in enumerate(model.modalities):
        missing = batch[absent[:, j]]
        present = batch[~absent[:, j] & data_availability(model, *pairs(batch, model))[:, j]]
        assert len(missing) > 10 and len(present) > 10
        before_missing, before_present = loss(missing), loss(present)
        u, i = pairs(missing, model)
        replace_input(model, g, (u if g == "U" else i).unique())
        assert torch.equal(loss(missing), before_missing), g  # the removed input is never read
        u, i = pairs(present, model)
        replace_input(model, g, (u if g == "U" else i).unique())
        assert not torch.equal(loss(present), before_present), g  # where it is in the data, it is

    model.eval()  # validation and test: every modality the data has (+F)
    with torch.no_grad():
        out = model(*pairs(batch, model))
    assert torch.equal(out.kept, data_availability(model, *pairs(batch, model)))


@pytest.mark.slow
def test_train_missing_prob_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="train_missing_prob"):
        build(train_missing_prob=0.7)  # 3 modalities: at most 2/3


def test_cap_groups_is_seeded_and_keeps_order():
    groups = [[3, 5, 8, 9, 12], [4], []]
    capped = cap_groups(groups, 2, seed=0)
    assert capped == cap_groups(groups, 2, seed=0)
    assert [len(g) for g in capped] == [2, 1, 0]
    assert set(capped[0]) <= set(groups[0]) and capped[0] == sorted(capped[0])
    assert cap_groups(groups, None, seed=0) == groups


@pytest.mark.slow
def test_max_item_reviews_caps_item_documents_only():
    _, (train, _, _), model, _ = build(max_item_reviews=1)
    item_counts, user_counts = (
        review_counts(train.dataset, "item_id"),
        review_counts(train.dataset, "user_id"),
    )
    assert item_counts.max() > 1
    assert np.array_equal(model.encoders["O"].lengths.numpy(), np.minimum(item_counts, 1))
    assert np.array_equal(
        model.encoders["U"].lengths.numpy(), np.minimum(user_counts, 20)
    )  # max_doc_units


def test_no_item_reviews_and_capped_ratings_still_train():
    _, (train, valid, _), model, trainer = build(max_item_reviews=0, max_item_train_ratings=2)
    items = train.dataset.inter_feat["item_id"].numpy()
    assert np.bincount(items).max() == 2
    assert not model.encoders["O"].lengths.any()  # O missing for every item: imputed
    _, result = trainer.fit(train, valid, saved=False)
    assert np.isfinite(result["rmse"])
