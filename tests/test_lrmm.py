"""LRMM (missing modalities): m-drop's rate, m-auto's reconstruction, imputation of masked
modalities at inference, per-condition test splits, checkpoints, determinism; amazon-mi with the
rating protocol (and a copy of it with a synthetic dense vector for the V modality)."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from recbole.utils import init_seed

import dataset_atomic
from recbole_hybrid.config import Config
from recbole_hybrid.data.reviews import make_documents
from recbole_hybrid.model.general_recommender.lrmm import drop_probabilities
from recbole_hybrid.model.layers import MeanPoolEncoder
from recbole_hybrid.quick_start import evaluate_test, prepare

from helpers import assert_checkpoint_round_trip, assert_same_seed_same_metrics

pytestmark = pytest.mark.usefixtures("in_tmp", "raw_data_root")

SMALL = {
    "protocol": "rating",
    "d2v_dim": 16,
    "d2v_epochs": 2,
    "hidden_size": 16,
    "ae_hidden_size": 32,
    "shared_size": 16,
    "max_doc_units": 20,
    "max_meta_words": 20,
    "train_batch_size": 256,
    "epochs": 1,
    "show_progress": False,
    "state": "ERROR",
}


def build(dataset="amazon-mi", **overrides):
    config = Config("LRMM", dataset, config_dict=dict(SMALL, **overrides))
    init_seed(config["seed"], config["reproducibility"])
    return prepare(config)


def batches(loader, n=None):
    return [b for i, b in zip(range(n or len(loader)), loader)]


def pairs(batch, model):
    return batch[model.USER_ID], batch[model.ITEM_ID]


# ---- pieces
def test_mean_pool_encoder():
    units = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0]])  # unit ids 1, 2, 3 (0 pads)
    docs = make_documents([[1, 2], [], [2, 2, 3]], units.numpy(), max_len=0)
    enc = MeanPoolEncoder(docs, 2)
    with torch.no_grad():
        enc.linear.weight.copy_(torch.eye(2))
        enc.linear.bias.fill_(0.5)
        out = enc(torch.tensor([0, 1, 2]))
    assert enc.mask(torch.tensor([0, 1, 2])).tolist() == [True, False, True]
    assert torch.allclose(out, torch.tensor([[2.5, 1.5], [0.5, 0.5], [2.5, 8 / 3 + 0.5]]))


@pytest.mark.parametrize("p", [0.2, 0.5, 0.7])
def test_drop_probabilities_give_the_rate(p):
    for n, q in enumerate(drop_probabilities(p, 4)):
        if n < 2:
            assert q == 0.0
        elif p < (n - 1) / n:
            assert abs(q - q**n / n - p) < 1e-9
        else:
            assert q == 1.0


# ---- m-drop / m-auto on amazon-mi
@pytest.mark.slow
def test_mdrop_drops_whole_modalities_at_the_rate():
    _, (train, _, _), model, _ = build(mdrop_prob=0.4, dropout_prob=0.0)
    assert model.modalities == ("U", "O", "M")
    model.train()
    kept, available = [], []
    with torch.no_grad():
        for _ in range(2):
            for batch in train:
                out = model(*pairs(batch, model))
                blocks = out.ae_input[:, : 3 * 16].view(-1, 3, 16)
                # a dropped (or absent) modality is zero as a whole at m-auto's input, a kept one
                # is not
                assert torch.equal(blocks.abs().sum(2) > 0, out.kept)
                assert torch.equal(out.ae_input[:, 3 * 16 :], out.kept.float())
                kept.append(out.kept)
                available.append(out.available)
    kept, available = torch.cat(kept), torch.cat(available)
    full = available.all(1)
    assert full.float().mean() > 0.9 and len(kept) > 15000
    rates = 1 - kept[full].float().mean(0)
    assert torch.allclose(rates, torch.full_like(rates, 0.4), atol=0.015), rates
    assert (kept.sum(1) >= 1)[available.any(1)].all()  # never all of a sample's modalities
    assert not (kept & ~available).any()
    _, (train, _, _), model, _ = build(mdrop_prob=0.0)
    model.train()
    with torch.no_grad():
        out = model(*pairs(next(iter(train)), model))
    assert torch.equal(out.kept, out.available)


def test_mdrop_rate_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="mdrop_prob"):
        build(mdrop_prob=0.7)  # 3 modalities: at most 2/3


@pytest.mark.slow
def test_reconstruction_loss_falls_without_mdrop():
    _, (train, _, _), model, _ = build(mdrop_prob=0.0, dropout_prob=0.0)
    fixed = []
    for batch in batches(train, 2):
        _, available = model._embeddings(*pairs(batch, model))
        fixed.append(batch[available.all(1)])  # every modality present
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()

    def recon():
        with torch.no_grad():
            return sum(model.reconstruction_loss(model(*pairs(b, model))).item() for b in fixed)

    before = recon()
    for _ in range(20):
        for batch in fixed:
            optimizer.zero_grad()
            model.calculate_loss(batch).backward()
            optimizer.step()
    after = recon()
    assert after < 0.5 * before, (before, after)
    assert model.loss_stats["batches"] == 40


# ---- missing modalities at inference
@pytest.fixture
def amazon_with_vectors(raw_data_root, tmp_path):
    """amazon-mi plus a synthetic 8-d dense item vector ``img_vec`` (absent for a tenth of the
    items): a dataset with the V modality and ratings."""
    source = dataset_atomic.ensure_atomic("amazon-mi", tmp_path / "built", raw_data_root)
    out = tmp_path / "data" / "ami-v"
    out.mkdir(parents=True)
    shutil.copy(source / "amazon-mi.inter", out / "ami-v.inter")
    item = pd.read_csv(source / "amazon-mi.item", sep="\t", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    item["img_vec:float_seq"] = [
        " ".join(f"{v:.4f}" for v in rng.normal(size=8)) if rng.random() > 0.1 else ""
        for _ in range(len(item))
    ]
    item.to_csv(out / "ami-v.item", sep="\t", index=False)
    base = Config("LRMM", "amazon-mi", config_dict={"protocol": "rating"})
    keys = (
        "USER_ID_FIELD",
        "ITEM_ID_FIELD",
        "RATING_FIELD",
        "TIME_FIELD",
        "load_col",
        "review_field",
    )
    return dict(
        {k: base[k] for k in keys},
        data_path=str(tmp_path / "data"),
        content_fields=["meta", "img_vec"],
        content_missing="zero",
        dense_field="img_vec",
    )


def replace_input(model, g, rows):
    """Give ``rows`` of modality ``g`` other rows' real input (documents or vectors)."""
    enc = model.encoders[g]
    other = rows.roll(1)
    if g == "V":
        enc.vectors[rows] = enc.vectors[other] + 1.0
    else:
        enc.ids[rows], enc.lengths[rows] = enc.ids[other].clone(), enc.lengths[other].clone()
    model.invalidate_cache()


@pytest.mark.slow
@pytest.mark.parametrize("g", ["U", "O", "M", "V"])
def test_masked_modality_is_imputed_never_read(g, request):
    extra = request.getfixturevalue("amazon_with_vectors") if g == "V" else {}
    dataset = "ami-v" if g == "V" else "amazon-mi"
    _, (train, valid, _), model, trainer = build(dataset, **extra)
    trainer.fit(train, valid, saved=False)
    model.eval()
    batch = next(iter(valid))[0][:500]
    users, items = pairs(batch, model)
    rows = (users if g == "U" else items).unique()
    rows = rows[model.encoders[g].mask(rows)]
    with torch.no_grad():
        full_before = model.predict(batch)
        with model.missing_modalities([g]):
            out = model(users, items)
            masked_before = model.predict(batch)
        j = model.modalities.index(g)
        assert g in out.recon and not out.kept[:, j].any()
        assert not torch.allclose(masked_before, full_before)
        replace_input(model, g, rows)
        with model.missing_modalities([g]):
            assert torch.equal(model.predict(batch), masked_before)  # the real input is never read
        assert not torch.allclose(model.predict(batch), full_before)  # present, it is


@pytest.mark.slow
@pytest.mark.parametrize("g", ["U", "O"])
def test_rating_biases_ride_with_their_modality(g):
    """b_u counts only with U, b_v only with O: under -U / -O the bias is never read."""
    _, (_, valid, _), model, _ = build(rating_biases=True)
    model.eval()
    batch = next(iter(valid))[0][:300]
    table = model.user_bias if g == "U" else model.item_bias
    with torch.no_grad():
        full_before = model.predict(batch)
        with model.missing_modalities([g]):
            masked_before = model.predict(batch)
        table.weight.add_(0.3)
        assert not torch.allclose(model.predict(batch), full_before)
        with model.missing_modalities([g]):
            assert torch.equal(model.predict(batch), masked_before)


@pytest.mark.slow
def test_training_pair_never_reads_its_own_review():
    """Default ``own_review: exclude``: a training pair's U and O embeddings ignore its own
    review's vector, while another review in the same documents counts."""
    _, (train, _, _), model, _ = build(dropout_prob=0.0, mdrop_prob=0.0)
    assert model.own_review is not None
    batch = next(iter(train))[:8]
    users, items = pairs(batch, model)
    own = model.own_review(users, items)
    assert (own > 0).all()
    model.train()

    def embeddings():
        with torch.no_grad():
            return model._embeddings(users, items, own)[0]

    before = embeddings()
    units = [model.encoders[g].units.weight for g in ("U", "O")]
    with torch.no_grad():
        for weight in units:
            weight[own] += 1.0
    assert torch.allclose(embeddings(), before, atol=1e-6)
    other = model.encoders["U"].ids[users[0]]
    other = other[(other > 0) & (other != own[0])][:1]
    with torch.no_grad():
        units[0][other] += 1.0
    assert not torch.allclose(embeddings(), before)


@pytest.mark.slow
def test_missing_v_without_dense_modality_is_an_error():
    with pytest.raises(ValueError, match="no dense modality"):
        build(missing=["V"])
    _, _, model, _ = build()
    with pytest.raises(ValueError, match="no dense modality"):
        model._condition("-V", "missing_splits")
    with pytest.raises(ValueError, match="nothing is left"):
        model._condition(["U", "O", "M"], "missing")
    with pytest.raises(ValueError, match="not among this model's modalities"):
        model._condition("-X", "missing_splits")


def test_no_ratings_is_an_error():
    with pytest.raises(ValueError, match="LRMM .*needs ratings: dataset lfm2k has no rating field"):
        build("lfm2k", protocol="recbole")


@pytest.mark.slow
def test_missing_splits_score_one_model_under_each_condition():
    _, (train, valid, test), model, trainer = build(
        missing=["U"], missing_splits=["+F", "-U", "-O", "-M"]
    )
    assert list(test) == ["+F", "-U", "-O", "-M"] and len({id(t) for t in test.values()}) == 1
    _, best_valid = trainer.fit(train, valid, saved=False)
    results = evaluate_test(trainer, test, load_best_model=False)
    assert list(results) == ["+F", "-U", "-O", "-M"]
    model.eval()
    batch = next(iter(test["+F"]))[0]
    with torch.no_grad():
        predictions = {}
        for name in results:
            with model.test_condition(name):
                predictions[name] = model.predict(batch)
    assert all(not torch.equal(predictions[name], predictions["+F"]) for name in ["-U", "-O", "-M"])
    assert model.inference_missing == {"U"}  # restored: ``missing`` masks any other test scoring
    assert trainer.evaluate(test["+F"], load_best_model=False) == results["-U"]
    with model.missing_modalities(None):  # validation is +F whatever ``missing`` says
        assert trainer.evaluate(valid, load_best_model=False) == best_valid


@pytest.mark.slow
def test_ranks_under_a_ranking_protocol():
    _, (train, valid, test), model, trainer = build(protocol="recbole", missing=["U"])
    trainer.fit(train, valid, saved=False)
    result = evaluate_test(trainer, test, load_best_model=False)
    assert set(result) == {"hit@10", "ndcg@10", "mrr@10"}
    model.eval()
    users = next(iter(test))[0]
    with torch.no_grad():
        scores = model.full_sort_predict(users[:3])
    assert scores.shape == (3 * model.n_items,) and scores.min() >= 1.0 and scores.max() <= 5.0


# ---- checkpoints, determinism
@pytest.mark.slow
def test_checkpoint_round_trip(tmp_path):
    _, (train, valid, _), model, trainer = build()
    trainer.fit(train, valid, saved=False)
    _, _, fresh, _ = build()  # same split, untrained
    batch = next(iter(valid))[0]
    assert_checkpoint_round_trip(model, fresh, batch, tmp_path / "lrmm.pth")
    with torch.no_grad():
        assert torch.equal(model.loss_weights(), fresh.loss_weights())
        with model.missing_modalities(["O"]), fresh.missing_modalities(["O"]):
            assert torch.equal(model.predict(batch), fresh.predict(batch))


@pytest.mark.slow
def test_same_seed_same_metrics():
    assert_same_seed_same_metrics("LRMM", "amazon-mi", dict(SMALL, missing_splits=["+F", "-U"]))


@pytest.mark.slow
def test_lstm_text_encoders():
    _, (train, _, _), model, _ = build(text_encoder="lstm", max_doc_units=8, max_meta_words=8)
    assert all(type(model.encoders[g]).__name__ == "SequenceEncoder" for g in ("U", "O", "M"))
    model.train()
    loss = model.calculate_loss(next(iter(train)))
    loss.backward()
    assert model.encoders["U"].lstm.weight_hh_l0.grad.abs().sum() > 0
    w = model.encoders["U"].lstm.weight_hh_l0.detach()[
        :16
    ]  # one gate's recurrent weights: orthogonal
    assert torch.allclose(w @ w.T, torch.eye(16), atol=1e-5)
    with pytest.raises(ValueError, match="text_encoder"):
        build(text_encoder="cnn")
