"""recommend (issue 10): a checkpoint saved by the runner -> top-k external item ids for the
model's users, new users (fold-in) and new items (from their content); API and command line;
clear errors for unknown ids, missing capabilities and mismatching content."""

import copy
import functools
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from recbole.data.interaction import Interaction

from recbole_hybrid.config import Config
from recbole_hybrid.data.content import ContentError
from recbole_hybrid.quick_start import prepare
from recbole_hybrid.recommend import (
    COLD_START,
    FOLD_IN,
    CapabilityError,
    Recommender,
    UnknownIdError,
    capabilities,
    implements_score_users,
    main,
    model_classes,
    require,
    scoring_history,
)
from recbole_hybrid.utils import get_model

REPO = Path(__file__).resolve().parents[1]
QUICK = {
    "show_progress": False,
    "state": "ERROR",
    "epochs": 1,
    "metrics": ["Recall"],
    "topk": [10],
    "valid_metric": "recall@10",
}
PRETRAIN = {
    "pretrain_epochs": 1,
    "pretrain_layer_epochs": 1,
    "pretrain_latent_epochs": 1,
    "pretrain_cache": False,
}
SMALL = {  # tiny versions of the models that can fold in users (ml-100k, content: genres)
    "MDCVAE": dict(
        PRETRAIN,
        latent_dimension=16,
        content_hidden_sizes=[16],
        train_batch_size=256,
        content_batch_size=512,
    ),
    "CVAE": dict(PRETRAIN, embedding_size=16, content_hidden_sizes=[32], content_field="class"),
    "DualNet": {
        "hidden_sizes": [16, 16, 8],
        "pretrain_layer_epochs": 0,
        "pretrain_refine_epochs": 0,
        "train_batch_size": 256,
    },
    "ContentKNN": {},
    "MultiVAE": {},
    "EASE": {},
}
COLD_START_MODELS = ["MDCVAE", "CVAE", "DualNet", "ContentKNN"]
HISTORY_ONLY = [
    "MDCVAE",
    "DualNet",
    "ContentKNN",
    "MultiVAE",
    "EASE",
]  # a user is a function of her history


# ---- fixtures: one trained model (checkpoint) and its loaded Recommender per model ----
@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One tmp working dir for the module (RecBole writes saved/ and log_tensorboard/ there)."""
    path = tmp_path_factory.mktemp("recommend")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        patch.setattr("sys.argv", ["pytest"])
        torch.set_num_threads(1)
        yield path


def train_and_load(name, dataset, workdir, overrides):
    settings = dict(
        QUICK,
        **SMALL.get(name, {}),
        checkpoint_dir=str(workdir / f"saved-{name}-{dataset}-{len(overrides)}"),
    )
    config = Config(name, dataset, config_dict=dict(settings, **overrides))
    data, (train, _, _), model, trainer = prepare(config)
    trainer.fit(
        train, None, saved=True
    )  # no validation: the checkpoint is the last epoch, the model in hand
    model.eval()
    return SimpleNamespace(
        model=model,
        dataset=data,
        history=scoring_history(data, train),
        checkpoint=trainer.saved_model_file,
        rec=Recommender.from_checkpoint(trainer.saved_model_file),
    )


@pytest.fixture(scope="module")
def trained(workdir):
    cache = {}

    def get(name, dataset="ml-100k", **overrides):
        key = (name, dataset, repr(sorted(overrides.items())))
        if key not in cache:
            cache[key] = train_and_load(name, dataset, workdir, overrides)
        return cache[key]

    return get


# ---- helpers ----
def user_tokens(t, n, start=1):
    return list(t.dataset.field2id_token[t.dataset.uid_field][start : start + n])


def same_list_up_to_ties(items_a, scores_a, items_b, scores_b, tol=1e-5):
    """Two top-k lists of one user from two paths (batch sizes round differently): every item
    has the same score in both, or is missing from one list while tied with its last item."""
    for items, scores, other_items, other_scores in (
        (items_a, scores_a, items_b, scores_b),
        (items_b, scores_b, items_a, scores_a),
    ):
        other = dict(zip(other_items, other_scores))
        for item, score in zip(items, scores):
            expected = other.get(item, other_scores[-1])
            assert abs(score - expected) <= tol, (item, score, expected)


def training_items(t, user):
    """External ids of the items the model scores ``user`` from (her training history)."""
    uid = t.dataset.token2id(t.dataset.uid_field, user)
    return list(
        t.dataset.id2token(t.dataset.iid_field, t.history.inter_matrix(form="csr")[uid].indices)
    )


def in_process_top_k(t, users, k=10):
    """Top-k of the trained model in hand: full_sort_predict, RecBole's padding item and the
    training history masked (as RecBole's full-ranking evaluation does)."""
    ds, model = t.dataset, t.model
    ids = torch.from_numpy(ds.token2id(ds.uid_field, users))
    with torch.no_grad():
        scores = (
            model.full_sort_predict(Interaction({model.USER_ID: ids})).view(len(ids), -1).clone()
        )
    scores[:, 0] = -np.inf
    rows, cols = t.history.inter_matrix(form="csr")[ids.numpy()].nonzero()
    scores[rows, cols] = -np.inf
    values, items = torch.topk(scores, k)
    return [list(ds.id2token(ds.iid_field, row)) for row in items.numpy()], values.numpy()


def ranked(table, users):
    """(item lists, score arrays) per user of a recommend table, in rank order."""
    rows = [table[table.user == str(u)].sort_values("rank") for u in users]
    return [list(r.item) for r in rows], [r.score.to_numpy() for r in rows]


def scores_of(table):
    return {(u, i): s for u, i, s in zip(table.user, table.item, table.score)}


def write_item_file(path, header, rows):
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows))
    return path


@functools.lru_cache(maxsize=4)
def item_file_lines(path):
    return Path(path).read_text().splitlines()


def twin_item_file(dataset, items, path):
    """The dataset's own ``.item`` rows of ``items``, renamed ``new-<id>``: new items whose
    content is exactly that of known items."""
    lines = item_file_lines(dataset.item_file_path)
    header = lines[0].split("\t")
    col = header.index(f"{dataset.iid_field}:token")
    rows = [line.split("\t") for line in lines[1:]]
    wanted = set(items)
    twins = [r[:col] + [f"new-{r[col]}"] + r[col + 1 :] for r in rows if r[col] in wanted]
    assert len(twins) == len(wanted)
    return write_item_file(path, header, twins)


def content_only_items(t, n):
    """Known items with content but no training interaction: every cold-start model scores
    them from their content alone, exactly as it scores new items."""
    counts = np.bincount(
        t.history.inter_feat[t.dataset.iid_field].numpy(), minlength=t.dataset.item_num
    )
    has_content = t.dataset.item_content(t.model.content_name).mask.numpy()
    items = np.flatnonzero((counts == 0) & has_content)[:n]
    assert len(items) == n
    return list(t.dataset.id2token(t.dataset.iid_field, items))


# ---- checkpoint -> API, the model's users ----
@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMALL))
def test_checkpoint_gives_the_in_process_top_k(trained, name):
    t = trained(name)
    users = user_tokens(t, 30)
    expected_items, expected_scores = in_process_top_k(t, users)
    items, scores = ranked(t.rec.recommend(users=users, k=10), users)
    assert items == expected_items
    np.testing.assert_allclose(np.stack(scores), expected_scores, rtol=1e-5, atol=1e-6)
    assert len({tuple(i) for i in items}) > 1  # user-specific lists, not one list for all


@pytest.mark.slow
def test_strong_protocol_users_scored_from_their_fold_in_history(trained):
    """Protocol strong: held-out users never trained; the loaded model scores them from their
    fold-in history (installed on load) and leaves those items out, as in evaluation."""
    t = trained("MultiVAE", protocol="strong")
    uid, split = t.dataset.uid_field, t.dataset.protocol_split
    held_out = np.unique(split.tests["test"].inter_feat[uid].numpy())[:10]
    assert not set(held_out) & set(split.train.inter_feat[uid].numpy())
    users = list(t.dataset.id2token(uid, held_out))
    assert all(training_items(t, u) for u in users)  # their fold-in items
    expected_items, expected_scores = in_process_top_k(t, users)
    items, scores = ranked(t.rec.recommend(users=users, k=10), users)
    assert items == expected_items
    np.testing.assert_allclose(np.stack(scores), expected_scores, rtol=1e-5, atol=1e-6)


def test_seen_items_excluded_unless_asked(trained):
    t = trained("ContentKNN")
    users = user_tokens(t, 20)
    default = t.rec.recommend(users=users, k=20)
    included = t.rec.recommend(users=users, k=20, exclude_seen=False)
    seen = {u: set(training_items(t, u)) for u in users}
    assert not any(i in seen[u] for u, i in zip(default.user, default.item))
    assert sum(i in seen[u] for u, i in zip(included.user, included.item)) > 0


def test_candidates_restrict_the_ranking(trained):
    t = trained("MultiVAE")
    users, candidates = user_tokens(t, 5), [str(i) for i in range(1, 60)]
    table = t.rec.recommend(users=users, candidates=candidates, k=100)
    assert set(table.item) <= set(candidates)
    assert len(table) == sum(len(set(candidates) - set(training_items(t, u))) for u in users)


# ---- new users (fold-in) ----
@pytest.mark.parametrize("name", list(SMALL))
def test_new_user_list_follows_the_history_given(trained, name):
    t = trained(name)
    a, b = user_tokens(t, 2)
    histories = {"A": training_items(t, a), "B": training_items(t, b)}
    (top_a, top_b), (scores_a, _) = ranked(t.rec.recommend(history=histories, k=10), ["A", "B"])
    assert top_a != top_b
    assert not set(top_a) & set(histories["A"]) and not set(top_b) & set(histories["B"])
    if name in HISTORY_ONLY:  # a new user with a known user's history is that user
        (known,), (known_scores,) = ranked(t.rec.recommend(users=[a], k=10), [a])
        same_list_up_to_ties(top_a, scores_a, known, known_scores)


def test_one_new_user_from_a_plain_list(trained):
    t = trained("EASE")
    table = t.rec.recommend(history=["50", "172", "181"], k=5)
    assert list(table.user.unique()) == ["new"] and len(table) == 5
    assert not {"50", "172", "181"} & set(table.item)


# ---- new items (cold start) ----
@pytest.mark.parametrize("name", COLD_START_MODELS)
def test_new_items_rank_as_items_of_the_same_content(trained, name, tmp_path):
    """A new item (from a .item file) scores exactly as a known item of the same content that
    the model scores from content alone; the known items keep their scores."""
    t = trained(name)
    originals = content_only_items(t, 8)
    users = user_tokens(t, 10)
    path = twin_item_file(t.dataset, originals, tmp_path / "twins.item")
    table = t.rec.recommend(users=users, new_items=path, candidates=originals, k=16)
    assert table.new_item.sum() == 8 * len(users) and len(table) == 16 * len(users)
    score = scores_of(table)
    for u in users:
        twins = [score[u, f"new-{j}"] for j in originals]
        np.testing.assert_allclose(twins, [score[u, j] for j in originals], rtol=1e-4, atol=1e-5)
        assert np.std(twins) > 0  # content decides: items of other content score differently
    plain = scores_of(t.rec.recommend(users=users, candidates=originals, k=8))
    np.testing.assert_allclose(
        [score[key] for key in plain], list(plain.values()), rtol=1e-5, atol=1e-6
    )


def test_new_items_for_a_new_user(trained, tmp_path):
    t = trained("DualNet")
    originals = content_only_items(t, 4)
    history = training_items(t, user_tokens(t, 1)[0])
    path = twin_item_file(t.dataset, originals, tmp_path / "twins.item")
    score = scores_of(
        t.rec.recommend(history={"me": history}, new_items=path, candidates=originals, k=8)
    )
    np.testing.assert_allclose(
        [score["me", f"new-{j}"] for j in originals],
        [score["me", j] for j in originals],
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.fixture(scope="module")
def toy(trained, workdir):
    """ContentKNN on a small synthetic dataset with a dense content vector (vec: float_seq, 4-d)."""
    rng = np.random.default_rng(0)
    root = workdir / "toy-data"
    (root / "toy").mkdir(parents=True)
    pairs = sorted(
        {(u, i) for u in range(1, 41) for i in rng.choice(np.arange(1, 61), 8, replace=False)}
    )
    write_item_file(
        root / "toy" / "toy.inter",
        ["user_id:token", "item_id:token"],
        [(f"u{u}", f"i{i}") for u, i in pairs],
    )
    vectors = rng.random((61, 4)).round(4)
    write_item_file(
        root / "toy" / "toy.item",
        ["item_id:token", "vec:float_seq"],
        [(f"i{i}", " ".join(map(str, vectors[i]))) for i in range(1, 61)],
    )
    load_col = {"inter": ["user_id", "item_id"], "item": ["item_id", "vec"]}
    return trained(
        "ContentKNN", "toy", data_path=str(root), content_fields=["vec"], load_col=load_col
    ), vectors


def test_new_items_from_a_dataframe_of_vectors(toy):
    t, vectors = toy
    frame = pd.DataFrame(
        {"item_id": ["n3", "n7"], "vec": [list(vectors[3]), " ".join(map(str, vectors[7]))]}
    )
    score = scores_of(
        t.rec.recommend(
            users=["u1", "u2"], new_items=frame, candidates=["i3", "i7"], k=4, exclude_seen=False
        )
    )
    for u in ("u1", "u2"):
        assert score[u, "n3"] == pytest.approx(score[u, "i3"], abs=1e-5)
        assert score[u, "n7"] == pytest.approx(score[u, "i7"], abs=1e-5)


def test_bad_vectors_are_errors_naming_file_and_field(toy, tmp_path):
    t, vectors = toy
    nan = pd.DataFrame({"item_id": ["n1"], "vec": [[0.1, np.nan, 0.3, 0.4]]})
    with pytest.raises(ContentError, match=r"DataFrame.*vec.*NaN"):
        t.rec.recommend(users=["u1"], new_items=nan)
    short = write_item_file(
        tmp_path / "short.item", ["item_id:token", "vec:float_seq"], [("n1", "0.1 0.2 0.3")]
    )
    with pytest.raises(ContentError, match=r"short\.item.*vec.*length 4"):
        t.rec.recommend(users=["u1"], new_items=short)
    text = write_item_file(
        tmp_path / "text.item", ["item_id:token", "vec:float_seq"], [("n1", "0.1 x 0.3 0.4")]
    )
    with pytest.raises(ContentError, match=r"text\.item.*vec"):
        t.rec.recommend(users=["u1"], new_items=text)


@pytest.mark.parametrize(
    "header, row, message",
    [
        (
            ["item_id:token", "movie_title:token_seq"],
            ["n1", "Toy"],
            r"bad\.item.*\[class\].*class:token_seq",
        ),
        (
            ["item_id:token", "class:float_seq"],
            ["n1", "1 0"],
            r"bad\.item.*trained on class:token_seq",
        ),
        (
            ["item_id:token", "class:token_seq"],
            ["n1", "Comedy Telenovela"],
            r"bad\.item.*class.*Telenovela",
        ),
        (["item_id:token", "class:token_seq"], ["1", "Comedy"], r"bad\.item.*\['1'\] are not new"),
        (["item_id:token", "class:token_seq"], ["n1", ""], r"bad\.item.*no class"),
        (["class:token_seq"], ["Comedy"], r"bad\.item.*no item id column"),
    ],
)
def test_content_that_does_not_match_the_model_is_an_error(trained, tmp_path, header, row, message):
    t = trained("ContentKNN")
    path = write_item_file(tmp_path / "bad.item", header, [row])
    with pytest.raises(ContentError, match=message):
        t.rec.recommend(users=["1"], new_items=path)


def test_duplicate_new_items_are_an_error(trained, tmp_path):
    t = trained("ContentKNN")
    path = write_item_file(
        tmp_path / "dup.item", ["item_id:token", "class:token_seq"], [["n1", "Drama"]] * 2
    )
    with pytest.raises(ContentError, match=r"dup\.item.*duplicate"):
        t.rec.recommend(users=["1"], new_items=path)


# ---- unknown ids, capabilities ----
def test_unknown_ids_are_named(trained):
    rec = trained("ContentKNN").rec
    with pytest.raises(UnknownIdError, match=r"user.*'nobody'.*'ghost'"):
        rec.recommend(users=["1", "nobody", "ghost"])
    with pytest.raises(UnknownIdError, match=r"item.*'99999'"):
        rec.recommend(history=["50", "99999"])
    with pytest.raises(UnknownIdError, match=r"candidate item.*'x1'"):
        rec.recommend(users=["1"], candidates=["50", "x1"])


def test_models_without_a_path_raise_clear_errors(trained, tmp_path):
    t = trained("MultiVAE")
    path = twin_item_file(t.dataset, ["1"], tmp_path / "one.item")
    with pytest.raises(
        CapabilityError, match=r"MultiVAE has no path for scoring new items.*MDCVAE"
    ):
        t.rec.recommend(users=["1"], new_items=path)
    for name in ("BPR", "BiasMF", "CDAE"):
        with pytest.raises(
            CapabilityError, match=rf"{name} has no path for scoring a user.*fold-in.*MultiVAE"
        ):
            require(get_model(name), FOLD_IN)
    for name in ("MostPop", "BiasMF", "EASE"):
        with pytest.raises(CapabilityError, match=rf"{name} has no path .*cold start.*DualNet"):
            require(get_model(name), COLD_START)


def test_every_model_declares_what_recommend_can_do():
    classes = model_classes()
    expected = {
        "MDCVAE": {FOLD_IN, COLD_START},
        "MDsymCVAE": {FOLD_IN, COLD_START},
        "CVAE": {FOLD_IN, COLD_START},
        "DualNet": {FOLD_IN, COLD_START},
        "ContentKNN": {FOLD_IN, COLD_START},
        "MostPop": {FOLD_IN},
        "DEAMER": {FOLD_IN, COLD_START},
        "LRMM": {FOLD_IN, COLD_START},
        "BiasMF": set(),
        "MultiVAE": {FOLD_IN},
        "MultiDAE": {FOLD_IN},
        "RecVAE": {FOLD_IN},
        "EASE": {FOLD_IN},
        "ItemKNN": {FOLD_IN},
        "BPR": set(),
        "LightGCN": set(),
        "CDAE": set(),
    }
    assert {name: capabilities(classes[name]) for name in expected} == expected
    ours = [c for c in classes.values() if c.__module__.startswith("recbole_hybrid.")]
    assert len(ours) >= 9
    for cls in ours:  # the plug-in contract: fold_in / cold_start come with score_users
        if (
            hasattr(cls, "fold_in")
            or getattr(cls, "cold_start", False)
            or getattr(cls, "new_users", False)
        ):
            assert implements_score_users(cls), cls.__name__


# ---- DEAMER, LRMM: several content fields (real data: amazon-mi reviews + meta words,
# lfm2k vectors) ----
MULTIMODAL = {
    ("DEAMER", "amazon-mi"): {
        "protocol": "loo99",
        "d2v_dim": 16,
        "d2v_epochs": 2,
        "hidden_size": 16,
        "embedding_size": 8,
        "max_doc_units": 8,
    },
    ("DEAMER", "lfm2k"): {"protocol": "recbole", "hidden_size": 16, "max_doc_units": 8},
    ("LRMM", "amazon-mi"): {
        "protocol": "rating",
        "d2v_dim": 16,
        "d2v_epochs": 2,
        "hidden_size": 16,
        "ae_hidden_size": 32,
        "shared_size": 16,
        "max_doc_units": 8,
        "max_meta_words": 20,
        "metrics": ["RMSE"],
        "valid_metric": "rmse",
    },
}


@pytest.fixture(scope="module")
def multimodal(trained, raw_data_root):
    return lambda name, dataset: trained(name, dataset, **MULTIMODAL[name, dataset])


def full_sort(model, users):
    with torch.no_grad():
        return model.full_sort_predict(Interaction({model.USER_ID: torch.as_tensor(users)})).view(
            len(users), -1
        )


def item_tokens(t, n, start=1):
    return list(t.dataset.field2id_token[t.dataset.iid_field][start : start + n])


def table_scores(t, users, items, **kwargs):
    """{(user, item): score} of ``items`` (and any new items), seen items included."""
    return scores_of(
        t.rec.recommend(users=users, candidates=items, k=10**6, exclude_seen=False, **kwargs)
    )


@pytest.mark.slow
@pytest.mark.parametrize("name, dataset", list(MULTIMODAL))
def test_multimodal_known_users_are_scored_as_by_the_model(multimodal, name, dataset, tmp_path):
    """score_users of the model's users = full_sort_predict (DEAMER: the exposure, and the rating
    with predict_rating; LRMM: ratings); with new items the known items keep their scores."""
    t = multimodal(name, dataset)
    model, ids = t.rec.model, np.arange(1, 41)
    history = t.history.inter_matrix(form="csr")[ids]
    with torch.no_grad():
        torch.testing.assert_close(
            model.score_users(history, users=ids), full_sort(model, ids), rtol=1e-5, atol=1e-6
        )
    if hasattr(model, "predict_rating") and hasattr(model, "rating_out"):  # DEAMER with R
        model.predict_rating = True  # eq. 10 over every pair
        try:
            with torch.no_grad():
                got = model.score_users(history, users=ids)
            torch.testing.assert_close(got, full_sort(model, ids), rtol=1e-5, atol=1e-5)
            assert got.min() >= 1.0 and got.max() <= 5.0
        finally:
            model.predict_rating = False
    users, items = user_tokens(t, 5), item_tokens(t, 6)
    plain = table_scores(t, users, items)
    with_new = table_scores(
        t, users, items, new_items=twin_item_file(t.dataset, items, tmp_path / "twins.item")
    )
    assert len(with_new) == 2 * len(plain)
    np.testing.assert_allclose(
        [with_new[key] for key in plain], list(plain.values()), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("dataset", ["lfm2k", "amazon-mi"])
def test_deamer_new_items_score_as_items_of_the_same_content(multimodal, dataset, tmp_path):
    """A new item with a known item's metadata (and vector) scores as that item without its
    training reviews: lfm2k has none (the same score), amazon-mi's are hidden in a copy."""
    t = multimodal("DEAMER", dataset)
    users, items = user_tokens(t, 8), item_tokens(t, 8, start=3)
    score = table_scores(
        t, users, items, new_items=twin_item_file(t.dataset, items, tmp_path / "twins.item")
    )
    ids = t.dataset.token2id(t.dataset.iid_field, items)
    reference = copy.deepcopy(t.rec.model)
    if "reviews" in reference.item_parts:
        reference.item_parts["reviews"].lengths[torch.from_numpy(ids)] = (
            0  # no training review: missing
        )
        reference.invalidate_cache()
    expected = full_sort(reference, t.dataset.token2id(t.dataset.uid_field, users))[:, ids].numpy()
    got = np.array([[score[u, f"new-{i}"] for i in items] for u in users])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got.std(1).min() > 0  # content decides
    if dataset == "lfm2k":
        np.testing.assert_allclose(
            got, [[score[u, i] for i in items] for u in users], rtol=1e-5, atol=1e-6
        )


def test_deamer_new_user(multimodal):
    """lfm2k (user_document: history): a new user's document is her given items (in id order):
    she scores as the known user of that document."""
    t = multimodal("DEAMER", "lfm2k")
    reference = copy.deepcopy(t.rec.model)
    user, doc = 7, reference.user_text
    items = doc.ids[user, : doc.lengths[user]].sort().values
    doc.ids[user, : len(items)] = items
    history = list(t.dataset.id2token(t.dataset.iid_field, items.numpy()))
    reference.invalidate_cache()
    table = t.rec.recommend(history={"me": history}, k=10**6, exclude_seen=False)
    known = list(t.dataset.field2id_token[t.dataset.iid_field])
    got = table.set_index("item").score.reindex(known[1:]).to_numpy()
    np.testing.assert_allclose(
        got, full_sort(reference, [user])[0, 1:].numpy(), rtol=1e-5, atol=1e-6
    )


def test_deamer_with_review_documents_refuses_new_users(multimodal):
    """amazon-mi (reviews): a new user has none; the missing-user vector never trained (every
    training user has reviews), so every item would tie: an error, not arbitrary lists."""
    t = multimodal("DEAMER", "amazon-mi")
    history = training_items(t, t.dataset.id2token(t.dataset.uid_field, [7])[0])
    with pytest.raises(ValueError, match="cannot score new users"):
        t.rec.recommend(history={"me": history}, k=10)


def test_lrmm_new_items_are_scored_as_without_their_reviews(multimodal):
    """A new LRMM item (its meta words, from a DataFrame; unknown words dropped as in training)
    scores as its twin under -O (reviews imputed by m-auto, no b_v)."""
    t = multimodal("LRMM", "amazon-mi")
    users, items = user_tokens(t, 8), item_tokens(t, 8, start=3)
    ids = t.dataset.token2id(t.dataset.iid_field, items)
    words = [
        t.dataset.id2token("meta", row[row > 0]).tolist()
        for row in t.dataset.item_feat["meta"][ids].numpy()
    ]
    frame = pd.DataFrame(
        {"item_id": [f"new-{i}" for i in items], "meta": [w + ["zzz-never-seen"] for w in words]}
    )
    score = table_scores(t, users, items, new_items=frame)
    with t.rec.model.missing_modalities("-O"):
        expected = full_sort(t.rec.model, t.dataset.token2id(t.dataset.uid_field, users))[
            :, ids
        ].numpy()
    got = np.array([[score[u, f"new-{i}"] for i in items] for u in users])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got.std(1).min() > 0


def test_lrmm_new_user_is_scored_as_minus_u(multimodal):
    """A new LRMM user has no review: U imputed by m-auto and no b_u (the paper's -U); her
    history is not an LRMM input with review documents."""
    t = multimodal("LRMM", "amazon-mi")
    a, b = user_tokens(t, 2)
    table = t.rec.recommend(
        history={"A": training_items(t, a), "B": training_items(t, b)}, k=10**6, exclude_seen=False
    )
    known = list(t.dataset.field2id_token[t.dataset.iid_field])[1:]
    got = np.stack(
        [table[table.user == n].set_index("item").score.reindex(known).to_numpy() for n in "AB"]
    )
    with t.rec.model.missing_modalities("-U"):
        expected = full_sort(t.rec.model, t.dataset.token2id(t.dataset.uid_field, [a, b]))[
            :, 1:
        ].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[0], got[1])


@pytest.mark.parametrize(
    "dataset, column, values, message",
    [
        ("lfm2k", "audio_vec", None, r"DataFrame.*\[audio_vec\].*\['audio_vec'\] missing"),
        ("lfm2k", "audio_vec", [0.1] * 100, r"DataFrame.*audio_vec.*length 512"),
        ("lfm2k", "text_vec", [np.nan] * 384, r"DataFrame.*text_vec.*NaN"),
        (
            "amazon-mi",
            "meta",
            "zzz-unknown qqq-unknown",
            r"DataFrame.*\['n1'\] have no meta the model can read",
        ),
        ("amazon-mi", "meta:float_seq", "1 2", r"DataFrame.*trained on meta:token_seq"),
    ],
)
def test_multimodal_content_that_does_not_fit_is_an_error(
    multimodal, dataset, column, values, message
):
    name = "DEAMER" if dataset == "lfm2k" else "LRMM"
    t = multimodal(name, dataset)
    columns = (
        {"item_id": ["n1"], "text_vec": [[0.1] * 384], "audio_vec": [[0.1] * 512]}
        if dataset == "lfm2k"
        else {"item_id": ["n1"]}
    )
    if values is None:
        del columns[column]
    else:
        columns[column] = [values]
    with pytest.raises(ContentError, match=message):
        t.rec.recommend(users=user_tokens(t, 1), new_items=pd.DataFrame(columns))


# ---- command line ----
@pytest.mark.slow
def test_command_line_writes_what_the_api_returns(trained, workdir, tmp_path):
    t = trained("ContentKNN")
    originals = content_only_items(t, 3)
    items = twin_item_file(t.dataset, originals, tmp_path / "twins.item")
    out = tmp_path / "top.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "recbole_hybrid.recommend",
            "--checkpoint",
            t.checkpoint,
            "--user",
            "1",
            "2",
            "--history",
            "50",
            "172",
            "--new-items",
            str(items),
            "--k",
            "7",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    expected = t.rec.recommend(users=["1", "2"], history=["50", "172"], new_items=items, k=7)
    got = pd.DataFrame(json.loads(out.read_text()))
    assert list(got.columns) == list(expected.columns) and len(got) == 21
    assert (got.user.astype(str) + got.item.astype(str)).tolist() == (
        expected.user + expected.item
    ).tolist()
    np.testing.assert_allclose(got.score, expected.score, rtol=1e-5)


def test_command_line_table_csv_and_errors(trained, monkeypatch, capsys, tmp_path):
    t = trained("ContentKNN")
    monkeypatch.setattr(
        Recommender, "from_checkpoint", classmethod(lambda cls, path, data_path=None: t.rec)
    )
    main(["--checkpoint", "x.pth", "--user", "1", "--k", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["user", "rank", "item", "score", "new_item"] and len(lines) == 4
    main(
        [
            "--checkpoint",
            "x.pth",
            "--history",
            "50",
            "--k",
            "3",
            "--include-seen",
            "--output",
            str(tmp_path / "t.csv"),
        ]
    )
    assert len(pd.read_csv(tmp_path / "t.csv")) == 3
    with pytest.raises(SystemExit, match="unknown user ids.*nobody"):
        main(["--checkpoint", "x.pth", "--user", "nobody"])


# ---- real data ----
@pytest.mark.slow
def test_citeulike_checkpoint_and_new_papers_matching_the_history(trained, raw_data_root, tmp_path):
    """CiteULike-a (bag-of-words): the API reproduces the model's top-k, and new papers with the
    text of a user's held-out papers outrank new papers of random text for a new user with
    her training history (AUC well above chance)."""
    t = trained(
        "ContentKNN", "citeulike-a", data_path=str(REPO / "dataset"), content_fields=["bow"]
    )
    users = user_tokens(t, 20)
    expected_items, expected_scores = in_process_top_k(t, users)
    items, scores = ranked(t.rec.recommend(users=users, k=10), users)
    assert items == expected_items
    np.testing.assert_allclose(np.stack(scores), expected_scores, rtol=1e-5, atol=1e-6)

    ds = t.dataset
    all_items = ds.inter_feat[ds.iid_field].numpy()
    all_users = ds.inter_feat[ds.uid_field].numpy()
    rng = np.random.default_rng(0)
    random_items = list(
        ds.id2token(ds.iid_field, rng.choice(np.arange(1, ds.item_num), 200, replace=False))
    )
    aucs = []
    for user in users[:10]:
        history = training_items(t, user)
        uid = ds.token2id(ds.uid_field, user)
        held_out = sorted(
            set(ds.id2token(ds.iid_field, all_items[all_users == uid])) - set(history)
        )
        negatives = [i for i in random_items if i not in set(history) | set(held_out)][:50]
        if not held_out:
            continue
        path = twin_item_file(ds, held_out + negatives, tmp_path / f"new-{user}.item")
        table = t.rec.recommend(
            history={user: history}, new_items=path, candidates=[], k=len(held_out) + 50
        )
        score = scores_of(table)
        pos = np.array([score[user, f"new-{i}"] for i in held_out])
        neg = np.array([score[user, f"new-{i}"] for i in negatives])
        aucs.append((pos[:, None] > neg[None, :]).mean())
    assert len(aucs) >= 5 and np.mean(aucs) > 0.75, aucs
