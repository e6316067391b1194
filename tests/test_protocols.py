"""Protocol invariants (strong, cold, in-matrix, fixed, loo99, rating) and the extra metrics."""

import numpy as np
import pytest
import torch
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.trainer import Trainer
from recbole.utils import InputType

from recbole_hybrid.config import Config
from recbole_hybrid.data import create_dataset, data_preparation
from recbole_hybrid.evaluator.metrics import TRecall
from recbole_hybrid.quick_start import prepare, run_recbole_hybrid

QUIET = {"state": "ERROR", "show_progress": False}


def pairs(dataset):
    feat = dataset.inter_feat
    return set(zip(feat[dataset.uid_field].tolist(), feat[dataset.iid_field].tolist()))


def users(dataset):
    return set(dataset.inter_feat[dataset.uid_field].tolist())


@pytest.fixture(scope="module")
def strong():
    config = Config("MultiVAE", "ml-100k", config_dict=dict(QUIET, protocol="strong"))
    dataset = create_dataset(config)
    loaders = data_preparation(config, dataset)
    return dataset, dataset.protocol_split, loaders


def test_strong_users_disjoint(strong):
    dataset, split, _ = strong
    train, valid, test = users(split.train), users(split.valid), users(split.tests["test"])
    assert not train & valid and not train & test and not valid & test
    n_users = dataset.user_num - 1
    assert abs(len(test) - 0.1 * n_users) <= 1 and abs(len(valid) - 0.1 * n_users) <= 1


def test_strong_fold_in_never_scored(strong):
    dataset, split, (_, _, test_loader) = strong
    scored, history = pairs(split.tests["test"]), pairs(split.history)
    assert not scored & history
    assert pairs(split.train) <= history
    assert scored | (history - pairs(split.train)) - pairs(split.valid) >= scored
    # each test user: ~20% scored, the rest folded in and masked in the eval loader
    for uid in list(users(split.tests["test"]))[:20]:
        fold = {i for u, i in history if u == uid}
        held = {i for u, i in scored if u == uid}
        assert held and fold and len(held) <= 0.2 * (len(held) + len(fold)) + 1
        assert set(test_loader.uid2history_item[uid].tolist()) == fold


def test_strong_model_reads_fold_in_history(strong):
    config = Config("MultiVAE", "ml-100k", config_dict=dict(QUIET, protocol="strong", epochs=1))
    dataset, (train, _, _), model, _ = prepare(config)
    test_user = next(iter(users(dataset.protocol_split.tests["test"])))
    assert test_user not in set(train.user_list[train.uid_field].tolist())  # never trained on
    row = model.get_rating_matrix(torch.tensor([test_user]))[0]
    fold = {i for u, i in pairs(dataset.protocol_split.history) if u == test_user}
    assert set(torch.nonzero(row).flatten().tolist()) == fold


def split_of(protocol, **settings):
    config = Config("ContentKNN", "ml-100k", config_dict=dict(QUIET, protocol=protocol, **settings))
    return create_dataset(config).build_protocol()


def test_strong_drops_items_no_training_user_has(strong):
    _, split, _ = strong
    train_items = {i for _, i in pairs(split.train)}
    held_out = (
        pairs(split.history) - pairs(split.train) | pairs(split.valid) | pairs(split.tests["test"])
    )
    assert {i for _, i in held_out} <= train_items
    unfiltered = split_of("strong", strong_drop_unseen_items=False)
    assert pairs(unfiltered.train) == pairs(split.train)  # the same users train
    every = pairs(unfiltered.history) | pairs(unfiltered.valid) | pairs(unfiltered.tests["test"])
    dropped = every - (pairs(split.history) | pairs(split.valid) | pairs(split.tests["test"]))
    assert dropped  # ml-100k has items only held-out users rated
    assert dropped == {(u, i) for u, i in every if i not in train_items}


def test_strong_scores_only_users_keeping_min_items(tmp_path):
    """Liang et al.: a held-out user left with fewer than 5 items after the drop is folded in
    whole and not scored. Half the users share their 6 items; the other half share 3 and
    have 3 of their own, which only survive when that user trains."""
    from test_content import write_dataset

    shared = [f"s{k}" for k in range(6)]
    inter = [(f"u{u}", i) for u in range(50) for i in shared]
    inter += [
        (f"v{u}", i) for u in range(50) for i in shared[:3] + [f"own{u}-{k}" for k in range(3)]
    ]
    config = Config(
        "ContentKNN",
        "tiny",
        config_dict=dict(
            QUIET,
            protocol="strong",
            data_path=str(write_dataset(tmp_path, items=None, inter=inter)),
        ),
    )
    dataset = create_dataset(config)
    split = dataset.build_protocol()
    token = dataset.field2id_token["user_id"]
    held_out = {u for u, _ in pairs(split.history) - pairs(split.train)}
    scored = users(split.valid) | users(split.tests["test"])
    assert {token[u][0] for u in held_out} == {"u", "v"}  # both kinds were drawn
    assert {token[u][0] for u in scored} == {"u"}
    unscored = held_out - scored
    history = pairs(split.history)
    assert all(len({i for u, i in history if u == user}) == 3 for user in unscored)


def test_strong_with_no_user_left_to_score_stops(tmp_path):
    from test_content import write_dataset

    own = lambda u: [f"own{u}-{k}" for k in range(2)]
    inter = [(f"v{u}", i) for u in range(50) for i in ["s0", "s1", "s2"] + own(u)]
    data_path = str(write_dataset(tmp_path, items=None, inter=inter))
    config = Config(
        "MultiVAE", "tiny", config_dict=dict(QUIET, protocol="strong", data_path=data_path)
    )
    with pytest.raises(
        ValueError, match=r"none of the 5 validation users keeps strong_min_items = 5"
    ):
        create_dataset(config).build_protocol()


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["strong", "cold", "recbole"])
def test_split_seed_draws_the_split(protocol):
    def drawn(seed):
        split = split_of(protocol, split_seed=seed)
        return pairs(split.valid), {name: pairs(t) for name, t in split.tests.items()}

    assert drawn(0) == drawn(0)
    assert drawn(0) != drawn(1)


def test_recbole_split_follows_seed_without_split_seed():
    assert pairs(split_of("recbole", seed=1).valid) != pairs(split_of("recbole", seed=2).valid)


def test_strong_rejects_models_without_fold_in():
    with pytest.raises(
        ValueError, match="BPR cannot serve protocol 'strong'.*folds_in_users = False"
    ):
        run_recbole_hybrid("BPR", "ml-100k", config_dict=dict(QUIET, protocol="strong"))


@pytest.fixture(scope="module")
def cold():
    config = Config("ContentKNN", "ml-100k", config_dict=dict(QUIET, protocol="cold"))
    dataset = create_dataset(config)
    loaders = data_preparation(config, dataset)
    return config, dataset, dataset.protocol_split, loaders


@pytest.mark.parametrize("ratio, n_cold", [(0.0001, 0), (1.0, 1682)])
def test_cold_without_a_cold_or_a_warm_item_stops(ratio, n_cold):
    with pytest.raises(ValueError, match=rf"cold_item_ratio = {ratio} .* makes {n_cold} cold"):
        split_of("cold", cold_item_ratio=ratio)


def test_cold_items_absent_from_training(cold):
    _, dataset, split, (train_loader, _, tests) = cold
    cold_items = set(dataset.cold_items.tolist())
    n_with_inter = len(set(dataset.inter_feat[dataset.iid_field].tolist()))
    assert abs(len(cold_items) - 0.1 * n_with_inter) <= 1
    for part in (split.train, split.valid, split.tests["normal"]):
        assert not {i for _, i in pairs(part)} & cold_items
    assert {i for _, i in pairs(split.tests["cold"])} == cold_items
    assert set(tests) == {"normal", "cold"}


def test_no_pair_in_two_parts(cold, strong, in_matrix):
    for split in (cold[2], strong[1], in_matrix[1]):
        parts = [pairs(split.train), pairs(split.valid)] + [pairs(t) for t in split.tests.values()]
        for i, a in enumerate(parts):
            for b in parts[i + 1 :]:
                assert not a & b


@pytest.fixture(scope="module")
def in_matrix():
    config = Config("ContentKNN", "ml-100k", config_dict=dict(QUIET, protocol="in-matrix"))
    dataset = create_dataset(config)
    data_preparation(config, dataset)
    return dataset, dataset.protocol_split


def test_in_matrix_known_users_and_seen_items(in_matrix):
    dataset, split = in_matrix
    train, valid, test = split.train, split.valid, split.tests["test"]
    assert (
        not pairs(train) & pairs(valid)
        and not pairs(train) & pairs(test)
        and not pairs(valid) & pairs(test)
    )
    all_users = users(dataset)
    known = users(train)
    assert users(valid) <= known and users(test) <= known
    assert abs(len(known) - 0.9 * len(all_users)) <= 1  # ml-100k: every user has >= 20 items
    unknown = all_users - known
    assert len(pairs(train)) + len(pairs(valid)) + len(pairs(test)) == sum(
        1 for u, _ in pairs(dataset) if u not in unknown
    )
    train_items = {i for _, i in pairs(train)}
    assert {i for _, i in pairs(valid) | pairs(test)} <= train_items  # every evaluated item seen
    n = len(pairs(train)) + len(pairs(valid)) + len(pairs(test))
    assert abs(len(pairs(test)) / n - 0.2) < 0.02 and abs(len(pairs(valid)) / n - 0.2) < 0.02


def test_in_matrix_moves_unseen_items_to_training():
    """An item of a single interaction is never evaluated: its pair moves to training."""
    config = Config(
        "ContentKNN", "ml-100k", config_dict=dict(QUIET, protocol="in-matrix", known_user_ratio=1.0)
    )
    dataset = create_dataset(config)
    split = dataset.build_protocol()
    train_items = {i for _, i in pairs(split.train)}
    evaluated = pairs(split.valid) | pairs(split.tests["test"])
    assert {i for _, i in evaluated} <= train_items
    counts = np.bincount(dataset.inter_feat[dataset.iid_field].numpy())
    single = set(np.flatnonzero(counts == 1).tolist())
    assert single and single <= train_items  # items of one interaction always train


def test_cold_rejects_models_without_cold_start():
    with pytest.raises(
        ValueError, match="MultiVAE cannot serve protocol 'cold'.*scores_new_items = False"
    ):
        run_recbole_hybrid("MultiVAE", "ml-100k", config_dict=dict(QUIET, protocol="cold"))


class ScoreIsItemId(GeneralRecommender):
    """Scores item j with j: a ranking we can compute by hand."""

    input_type = InputType.POINTWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def full_sort_predict(self, interaction):
        n = len(interaction[self.USER_ID])
        return torch.arange(self.n_items, dtype=torch.float).repeat(n)


@pytest.mark.slow
@pytest.mark.parametrize("split_name", ["cold", "normal"])
def test_split_aware_recall_by_hand(cold, split_name):
    config, dataset, split, (_, _, tests) = cold
    config["topk"] = [5, 20]
    config["metrics"] = ["Recall", "TRecall"]
    trainer = Trainer(config, ScoreIsItemId(config, split.train))
    result = trainer.evaluate(tests[split_name], load_best_model=False)
    excluded = set(split.excluded[split_name].tolist())
    known = pairs(split.train) | pairs(split.valid)
    recall, trecall = [], []
    for uid in users(split.tests[split_name]):
        positives = {i for u, i in pairs(split.tests[split_name]) if u == uid}
        seen = {i for u, i in known if u == uid}
        candidates = [
            i for i in range(dataset.item_num - 1, 0, -1) if i not in excluded and i not in seen
        ]
        hits = len(set(candidates[:20]) & positives)
        recall.append(hits / len(positives))
        trecall.append(hits / min(20, len(positives)))
    assert result["recall@20"] == pytest.approx(np.mean(recall), abs=1e-4)
    assert result["trecall@20"] == pytest.approx(np.mean(trecall), abs=1e-4)


def test_trecall_by_hand():
    metric = TRecall.__new__(TRecall)
    hits = np.array([[1, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)
    pos_len = np.array([2, 5])
    expected = np.array([[1 / 1, 1 / 2, 2 / 2, 2 / 2], [0, 0, 0, 1 / 4]])
    assert np.allclose(metric.metric_info(hits, pos_len), expected)


@pytest.mark.slow
def test_loo99_end_to_end():
    result = run_recbole_hybrid(
        "MultiVAE", "ml-100k", config_dict=dict(QUIET, protocol="loo99", epochs=1), saved=False
    )
    assert set(result["test_result"]) == {"hit@10", "ndcg@10", "mrr@10"}
    assert result["test_result"]["hit@10"] > 0.1  # 1 positive among 100 candidates: random is 0.1


@pytest.mark.slow
def test_rating_end_to_end():
    result = run_recbole_hybrid(
        "NeuMF", "ml-100k", config_dict=dict(QUIET, protocol="rating", epochs=1), saved=False
    )
    assert set(result["test_result"]) == {"rmse", "mae"}


def per_user_counts(dataset, part):
    tokens = dataset.field2id_token[dataset.uid_field]
    counts = np.bincount(part.inter_feat[dataset.uid_field].numpy(), minlength=len(tokens))
    return {int(tokens[u]): int(c) for u, c in enumerate(counts) if u > 0}


def file_counts(path):
    return {u: int(line.split()[0]) for u, line in enumerate(path.read_text().splitlines())}


@pytest.mark.slow
@pytest.mark.parametrize("name, p", [("citeulike-t", 1), ("citeulike-a", 10)])
def test_fixed_split_files_read_exactly(raw_data_root, tmp_path_factory, name, p):
    config = Config(
        "ContentKNN", name, config_dict=dict(QUIET, protocol="fixed", fixed_split=f"P={p}")
    )
    assert config["benchmark_filename"] == [f"P{p}-train", f"P{p}-valid", f"P{p}-test"]
    dataset = create_dataset(config)
    split = dataset.build_protocol()
    splits = raw_data_root / name / "cvae-splits"
    expected_train = file_counts(splits / f"cf-train-{p}-users.dat")
    expected_test = file_counts(splits / f"cf-test-{p}-users.dat")
    got_train = per_user_counts(dataset, split.train)
    assert {u: c for u, c in got_train.items() if c} == {
        u: c for u, c in expected_train.items() if c
    }
    valid, test = (
        per_user_counts(dataset, split.valid),
        per_user_counts(dataset, split.tests["test"]),
    )
    held = {u: valid.get(u, 0) + test.get(u, 0) for u in expected_test}
    assert {u: c for u, c in held.items() if c} == {u: c for u, c in expected_test.items() if c}
    assert not pairs(split.train) & (pairs(split.valid) | pairs(split.tests["test"]))


@pytest.mark.parametrize("model", ["MostPop", "ContentKNN", "MultiVAE", "BPR", "EASE"])
@pytest.mark.parametrize("protocol", ["rating", "loo-rating"])
def test_rating_protocols_refuse_ranking_only_models(model, protocol):
    with pytest.raises(
        ValueError, match=f"{model} cannot serve protocol '{protocol}'.*rates = False"
    ):
        run_recbole_hybrid(model, "ml-100k", config_dict=dict(QUIET, protocol=protocol))


def test_capabilities_declared_on_our_classes_and_read_for_recboles():
    from recbole_hybrid.model.capabilities import capabilities_of
    from recbole_hybrid.utils import get_model

    rates = {
        name
        for name in ("DEAMER", "LRMM", "BiasMF", "NeuMF", "DeepFM", "MDCVAE", "MultiVAE", "Pop")
        if capabilities_of(get_model(name)).rates
    }
    assert rates == {"DEAMER", "LRMM", "BiasMF", "NeuMF", "DeepFM"}
    assert (
        capabilities_of(get_model("EASE")).folds_in_users
        and not capabilities_of(get_model("BPR")).folds_in_users
    )
    assert (
        get_model("MDsymCVAE").cold_start and not get_model("MostPop").capabilities.scores_new_items
    )
