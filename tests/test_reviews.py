"""Review documents without leakage (issue 8 part 1): documents and Doc2Vec vectors come from
the training split only, missing documents are masked, negatives are never positives."""

import numpy as np
import pandas as pd
import pytest
import torch
from recbole.utils import init_seed

import dataset_atomic
from recbole_hybrid.config import Config
from recbole_hybrid.data.content import ContentError
from recbole_hybrid.data.reviews import (
    PairReviews,
    group_in_time_order,
    item_token_words,
    item_word_counts,
    make_documents,
    review_documents,
    train_doc2vec,
)
from recbole_hybrid.model.layers import (
    MeanPoolEncoder,
    SequenceEncoder,
    pair_keys,
    sample_negatives,
)
from recbole_hybrid.quick_start import prepare

pytestmark = pytest.mark.usefixtures("in_tmp")

TINY_TEXT = {
    "d2v_dim": 16,
    "d2v_epochs": 2,
    "hidden_size": 16,
    "embedding_size": 8,
    "train_batch_size": 512,
    "epochs": 1,
    "show_progress": False,
    "state": "ERROR",
    "max_doc_units": 10,
}


@pytest.fixture(scope="module")
def amazon_dir(raw_data_root, tmp_path_factory):
    """The amazon-mi atomic files, built once for this module."""
    return dataset_atomic.ensure_atomic("amazon-mi", tmp_path_factory.mktemp("data"), raw_data_root)


def copy_dataset(source_dir, data_path, name, edit=None, edit_items=None):
    """amazon-mi's atomic files under another name (no converter rebuilds them), the .inter
    optionally edited by ``edit(frame)``, the .item by ``edit_items(frame)``; returns the
    config dict that loads them."""
    out = data_path / name
    out.mkdir(parents=True)
    for suffix, change in (("inter", edit), ("item", edit_items)):
        frame = pd.read_csv(
            source_dir / f"amazon-mi.{suffix}", sep="\t", dtype=str, keep_default_na=False
        )
        if change is not None:
            change(frame)
        frame.to_csv(out / f"{name}.{suffix}", sep="\t", index=False)
    yaml_config = Config("DEAMER", "amazon-mi", config_dict={"protocol": "loo99"})
    keys = (
        "USER_ID_FIELD",
        "ITEM_ID_FIELD",
        "RATING_FIELD",
        "TIME_FIELD",
        "load_col",
        "content_fields",
        "review_field",
        "metrics",
        "topk",
        "valid_metric",
    )
    return dict({k: yaml_config[k] for k in keys}, data_path=str(data_path))


def prepared(name, dataset_config, **overrides):
    config = Config(
        "DEAMER", name, config_dict=dict(dataset_config, protocol="loo99", **TINY_TEXT, **overrides)
    )
    init_seed(config["seed"], config["reproducibility"])
    return (config, *prepare(config))


def held_out_pairs(loaders):
    _, valid, test = loaders
    pairs = set()
    for loader in (valid, test):
        ds = loader._dataset
        users = ds.field2id_token[ds.uid_field][ds.inter_feat[ds.uid_field].numpy()]
        items = ds.field2id_token[ds.iid_field][ds.inter_feat[ds.iid_field].numpy()]
        pairs |= set(zip(users, items))
    return pairs


def rewrite_reviews(pairs, text):
    def edit(frame):
        hit = [(u, i) in pairs for u, i in zip(frame["user_id:token"], frame["item_id:token"])]
        frame.loc[hit, "review:token"] = text

    return edit


def documents_of(model):
    encoders = [model.user_text, *model.item_parts.values()]
    return [(e.ids.clone(), e.lengths.clone(), e.units.weight.detach().clone()) for e in encoders]


@pytest.mark.slow
def test_held_out_review_text_changes_nothing(amazon_dir, tmp_path):
    base = copy_dataset(amazon_dir, tmp_path / "a", "ami-base")
    _, _, loaders, model, trainer = prepared("ami-base", base)
    held_out = held_out_pairs(loaders)
    assert len(held_out) == 2 * 1429
    trainer.fit(loaders[0], loaders[1], saved=False)
    before = documents_of(model), trainer.evaluate(loaders[2], load_best_model=False)

    edited = copy_dataset(
        amazon_dir,
        tmp_path / "b",
        "ami-edited",
        rewrite_reviews(held_out, "terrible broken refund leaked words"),
    )
    _, _, loaders, model, trainer = prepared("ami-edited", edited)
    assert held_out_pairs(loaders) == held_out
    trainer.fit(loaders[0], loaders[1], saved=False)
    after = documents_of(model), trainer.evaluate(loaders[2], load_best_model=False)
    for (a_ids, a_len, a_units), (b_ids, b_len, b_units) in zip(before[0], after[0]):
        assert (
            torch.equal(a_ids, b_ids)
            and torch.equal(a_len, b_len)
            and torch.equal(a_units, b_units)
        )
    assert before[1] == after[1]


@pytest.mark.slow
def test_training_review_text_changes_the_features(amazon_dir, tmp_path):
    """The leakage test above can fail: the same edit on training reviews shows."""
    base = copy_dataset(amazon_dir, tmp_path / "a", "ami-base")
    _, _, loaders, model, _ = prepared("ami-base", base)
    held_out = held_out_pairs(loaders)
    before = documents_of(model)
    inter = pd.read_csv(amazon_dir / "amazon-mi.inter", sep="\t", dtype=str, keep_default_na=False)
    train_pairs = {
        p for p in zip(inter["user_id:token"], inter["item_id:token"]) if p not in held_out
    }
    some = set(sorted(train_pairs)[:200])
    edited = copy_dataset(
        amazon_dir, tmp_path / "b", "ami-edited", rewrite_reviews(some, "totally different words")
    )
    _, _, _, model, _ = prepared("ami-edited", edited)
    assert not torch.equal(before[0][2], documents_of(model)[0][2])


@pytest.mark.slow
def test_documents_need_the_training_split(amazon_dir, tmp_path):
    base = copy_dataset(amazon_dir, tmp_path / "a", "ami-base")
    config, full, loaders, _, _ = prepared("ami-base", base)
    for dataset in (full, loaders[1]._dataset, loaders[2]._dataset):
        with pytest.raises(ContentError, match="training split only"):
            review_documents(dataset, config, "meta")
    assert review_documents(loaders[0]._dataset, config, "meta")["user"].mask.sum() == 1429


@pytest.mark.slow
def test_user_without_review_text_is_masked(amazon_dir, tmp_path):
    # the first user of the file gets empty review texts only
    def empty_first_user(frame):
        first = frame["user_id:token"].iloc[0]
        frame.loc[frame["user_id:token"] == first, "review:token"] = ""

    base = copy_dataset(amazon_dir, tmp_path / "a", "ami-empty", empty_first_user)
    _, _, loaders, model, _ = prepared("ami-empty", base)
    train = loaders[0]._dataset
    first = pd.read_csv(
        tmp_path / "a" / "ami-empty" / "ami-empty.inter", sep="\t", dtype=str, keep_default_na=False
    )["user_id:token"].iloc[0]
    uid = train.token2id(train.uid_field, first)
    assert not model.user_text.mask(torch.tensor([uid])).item()
    assert model.user_text.mask(torch.arange(1, train.user_num)).sum() == train.user_num - 2
    # a masked user is encoded as the learned "missing" vector
    model.eval()
    with torch.no_grad():
        model.missing["user"].fill_(0.5)
        assert torch.allclose(model.user_vectors(torch.tensor([uid])), torch.full((1, 16), 0.5))


@pytest.mark.slow
def test_item_without_metadata_is_masked(amazon_dir, tmp_path):
    def drop_meta(frame):
        frame.loc[:2, "meta:token_seq"] = ""

    base = copy_dataset(amazon_dir, tmp_path / "a", "ami-nometa", edit_items=drop_meta)
    _, _, loaders, model, _ = prepared("ami-nometa", base)
    train = loaders[0]._dataset
    items = pd.read_csv(tmp_path / "a" / "ami-nometa" / "ami-nometa.item", sep="\t", dtype=str)[
        "item_id:token"
    ]
    ids = torch.tensor([train.token2id(train.iid_field, t) for t in items])
    meta = model.item_parts["meta"]
    assert meta.mask(ids[:3]).tolist() == [False] * 3 and meta.mask(ids[3:]).all()


def test_group_in_time_order_and_truncation():
    rows = np.array([2, 1, 2, 2, 1])
    times = np.array([30, 5, 10, 20, 1])
    keep = np.array([True, True, True, False, True])
    groups = group_in_time_order(rows, times, 3, keep)
    assert groups == [[], [4, 1], [2, 0]]
    docs = make_documents(
        [[i + 1 for i in g] for g in groups], np.ones((5, 3), np.float32), max_len=1
    )
    assert docs.lengths.tolist() == [0, 1, 1]
    assert docs.ids[:, 0].tolist() == [0, 2, 1]  # the most recent unit kept
    assert docs.mask.tolist() == [False, True, True]
    assert torch.equal(docs.units[0], torch.zeros(3))


def test_sequence_encoder_ignores_padding():
    units = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    docs = make_documents([[1, 2], [1, 2, 3, 4]], units, max_len=0)
    torch.manual_seed(0)
    encoder = SequenceEncoder(docs, 6)
    alone = make_documents([[1, 2]], units, max_len=0)
    torch.manual_seed(0)
    single = SequenceEncoder(alone, 6)
    assert torch.allclose(encoder(torch.tensor([0]))[0], single(torch.tensor([0]))[0], atol=1e-6)


def test_doc2vec_same_seed_same_vectors():
    docs = [["good", "guitar", "strings"], ["bad", "cable", "noise"], ["good", "cable"]] * 5
    a = train_doc2vec(docs, 8, 3, 1, 2, seed=7)
    b = train_doc2vec(docs, 8, 3, 1, 2, seed=7)
    c = train_doc2vec(docs, 8, 3, 1, 2, seed=8)
    assert np.array_equal(a.dv.vectors, b.dv.vectors) and np.array_equal(a.wv.vectors, b.wv.vectors)
    assert not np.array_equal(a.dv.vectors, c.dv.vectors)


def test_negatives_are_never_positives():
    n_items = 12
    dense = torch.zeros(4, n_items, dtype=torch.bool)
    dense[1, 1:11] = True  # user 1 likes 10 of the 11 real items: only item 11 is left
    dense[2, 5] = True
    dense[3, 11] = True
    u, i = dense.nonzero(as_tuple=True)
    keys = torch.sort(pair_keys(u, i, n_items)).values
    torch.manual_seed(0)
    negatives = sample_negatives(torch.tensor([1, 2, 3] * 50), 5, keys, n_items)
    owners = torch.tensor([1, 2, 3] * 50).unsqueeze(1).expand_as(negatives)
    assert not dense[owners, negatives].any()
    assert (negatives[0::3] == 11).all()
    assert negatives.min() >= 1 and negatives.max() < n_items
    full = torch.sort(
        pair_keys(torch.ones(11, dtype=torch.long), torch.arange(1, 12), n_items)
    ).values
    with pytest.raises(ValueError, match="every item"):
        sample_negatives(torch.tensor([1]), 1, full, n_items, max_rounds=5)


@pytest.mark.slow
def test_contentknn_item_reviews_are_training_reviews_only(amazon_dir, tmp_path):
    """ContentKNN's item documents (metadata + training reviews): a held-out review's words
    never enter the vocabulary; a training review's words do."""
    base = copy_dataset(amazon_dir, tmp_path / "a", "ami-base")
    config, _, loaders, _, _ = prepared("ami-base", base)
    held_out = held_out_pairs(loaders)
    first_test = sorted(held_out)[0]
    train = loaders[0]._dataset
    counts = item_word_counts(train, "review", item_token_words(train, "meta"))
    edited = copy_dataset(
        amazon_dir, tmp_path / "b", "ami-edited", rewrite_reviews({first_test}, "zzqheldoutword")
    )
    _, _, loaders_b, _, _ = prepared("ami-edited", edited)
    train_b = loaders_b[0]._dataset
    counts_b = item_word_counts(train_b, "review", item_token_words(train_b, "meta"))
    assert (counts != counts_b).nnz == 0
    some_train = next(
        p
        for p in sorted(
            set(
                zip(
                    *[
                        pd.read_csv(amazon_dir / "amazon-mi.inter", sep="\t", dtype=str)[c]
                        for c in ("user_id:token", "item_id:token")
                    ]
                )
            )
        )
        if p not in held_out
    )
    edited = copy_dataset(
        amazon_dir, tmp_path / "c", "ami-edited2", rewrite_reviews({some_train}, "zzqtrainword")
    )
    _, _, loaders_c, _, _ = prepared("ami-edited2", edited)
    train_c = loaders_c[0]._dataset
    counts_c = item_word_counts(train_c, "review", item_token_words(train_c, "meta"))
    assert counts_c.shape[1] == counts.shape[1] + 1 or (counts_c != counts).nnz > 0
    item = train_c.token2id(train_c.iid_field, some_train[1])
    assert counts_c[item].sum() > 0


@pytest.mark.slow
def test_contentknn_scores_dense_vectors(raw_data_root):
    """On lfm2k's dense text vectors the scores are cosines, not all equal (idf of a dense
    vector would zero every weight)."""
    from recbole_hybrid.quick_start import run_recbole_hybrid

    result = run_recbole_hybrid(
        "ContentKNN", "lfm2k", config_dict={"state": "ERROR", "show_progress": False}, saved=False
    )
    assert result["test_result"]["recall@20"] > 0.05


def test_encoders_leave_out_a_pairs_own_review():
    units = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    # row 0: words 1, 2 from review 1 and word 3 from review 2; row 1: one word of review 3
    docs = make_documents([[1, 2, 3], [4]], units, max_len=0, sources=[[1, 1, 2], [3]])
    without_review_1 = make_documents([[3], []], units, max_len=0)
    for cls in (SequenceEncoder, MeanPoolEncoder):
        torch.manual_seed(0)
        encoder = cls(docs, 5)
        torch.manual_seed(0)
        reference = cls(without_review_1, 5)
        rows = torch.tensor([0, 1])
        with torch.no_grad():
            out = encoder(rows, torch.tensor([1, 0]))
            assert torch.allclose(out[0], reference(torch.tensor([0]))[0], atol=1e-6)
            assert torch.allclose(out[1], encoder(torch.tensor([1]))[0], atol=1e-6)
        assert encoder.mask(rows, torch.tensor([1, 3])).tolist() == [True, False]
        assert encoder.mask(rows).tolist() == [True, True]


def test_pair_reviews_lookup():
    own = PairReviews(np.array([3, 1, 2]), np.array([5, 7, 5]), n_items=10)
    assert own(torch.tensor([3, 1, 2, 1]), torch.tensor([5, 7, 5, 5])).tolist() == [1, 2, 3, 0]
