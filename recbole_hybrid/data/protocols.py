"""Evaluation protocols beyond RecBole's own split (``protocol`` in the yaml).

``split_by_protocol(dataset)`` returns a ``ProtocolSplit``:
  train    what the model is built and trained on,
  valid    validation interactions,
  tests    {split name: test interactions} ("test", or "normal" + "cold"),
  history  interactions masked at evaluation and read by fold-in (strong generalization:
           train + the fold-in part of held-out users); None = train,
  excluded {split name: items never ranked in that split} (cold start).

recbole / fixed / loo99 / rating use RecBole's own build (eval_args, benchmark files);
strong and cold are built here. Every random split is drawn from ``split_seed`` (when it is
not set, from ``seed``, as RecBole does): two draws of a protocol differ in ``split_seed`` only.
"""

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from recbole.data.dataset import Dataset


@dataclass
class ProtocolSplit:
    train: Dataset
    valid: Dataset
    tests: dict
    history: Dataset = None
    excluded: dict = field(default_factory=dict)


def split_by_protocol(dataset):
    builder = PROTOCOL_BUILDERS.get(dataset.config["protocol"], recbole_split)
    return builder(dataset)


def recbole_split(dataset):
    train, valid, test = recbole_build(dataset)
    return ProtocolSplit(train, valid, {"test": test})


def recbole_build(dataset):
    """RecBole's ``Dataset.build`` (eval_args), its shuffle drawn from ``split_seed``."""
    check_time_order(dataset)
    with split_torch_rng(dataset.config):
        return Dataset.build(dataset)


def check_time_order(dataset):
    """A split by time (eval_args order TO: loo99-time) needs the interactions' timestamps."""
    config = dataset.config
    if config["eval_args"]["order"] == "TO" and (
        dataset.time_field is None or dataset.time_field not in dataset.inter_feat
    ):
        raise ValueError(
            f"protocol {config['protocol']} splits each user's interactions by time "
            f"(eval_args order: TO), but {dataset.dataset_name}.inter has no timestamp field "
            f"loaded (TIME_FIELD: {config['TIME_FIELD']}, loaded columns: "
            f"{list(dataset.inter_feat.columns)}); use a protocol with a random split (loo99)"
        )


def split_torch_rng(config):
    """torch's global generator seeded by ``split_seed`` for the block, then restored (RecBole
    shuffles with it); unchanged when ``split_seed`` is not set (it follows ``seed``)."""
    seed = config["split_seed"]
    return nullcontext() if seed is None else _forked_torch_rng(seed)


@contextmanager
def _forked_torch_rng(seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _split_rng(dataset):
    seed = dataset.config["split_seed"]
    return np.random.default_rng(dataset.config["seed"] if seed is None else seed)


def subset(dataset, mask):
    """A copy of ``dataset`` with the interactions where ``mask`` (numpy bool) is True."""
    return dataset.copy(dataset.inter_feat[torch.from_numpy(np.flatnonzero(mask))])


def rank_within_user(users, rng):
    """A random rank 0..n_u-1 of each interaction among its user's interactions."""
    order = np.lexsort((rng.random(len(users)), users))
    ranks = np.empty(len(users), dtype=np.int64)
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(users)]))
    ranks[order] = np.arange(len(users)) - run_start
    return ranks


def strong_split(dataset):
    """Strong generalization (Multi-VAE, MD-CVAE): users split train/valid/test by
    ``strong_user_ratio``; held-out users never train; ``fold_in_ratio`` of each held-out
    user's items is her input at evaluation, the rest is scored. Only users with at least
    ``strong_min_items`` interactions are held out (Multi-VAE's preprocessing). With
    ``strong_drop_unseen_items`` (default), held-out users lose the items no training user
    has, from fold-in and targets alike, before the fold-in share is drawn; one left with
    fewer than ``strong_min_items`` items is folded in whole and not scored (Liang et al.'s
    preprocessing, which MD-CVAE follows)."""
    config = dataset.config
    dataset._change_feat_format()
    rng = _split_rng(dataset)
    users = dataset.inter_feat[dataset.uid_field].numpy()
    items = dataset.inter_feat[dataset.iid_field].numpy()
    counts = np.bincount(users, minlength=dataset.user_num)
    present = np.flatnonzero(counts)
    eligible = rng.permutation(np.flatnonzero(counts >= config["strong_min_items"]))
    _, valid_share, test_share = config["strong_user_ratio"]
    total = sum(config["strong_user_ratio"])
    n_valid = int(round(len(present) * valid_share / total))
    n_test = int(round(len(present) * test_share / total))
    if n_valid + n_test > len(eligible):
        raise ValueError(
            f"protocol strong: {n_valid + n_test} held-out users needed, only {len(eligible)} "
            f"have >= {config['strong_min_items']} interactions"
        )
    role = np.zeros(dataset.user_num, dtype=np.int8)  # 0 train, 1 valid, 2 test
    role[eligible[:n_valid]] = 1
    role[eligible[n_valid : n_valid + n_test]] = 2
    user_role = role[users]
    kept = np.ones(len(users), dtype=bool)
    if config["strong_drop_unseen_items"]:
        kept = (user_role == 0) | np.isin(items, items[user_role == 0])
    counts = np.bincount(users[kept], minlength=dataset.user_num)
    n_scored = np.maximum((counts * (1 - config["fold_in_ratio"])).astype(np.int64), 1)
    n_scored[counts < config["strong_min_items"]] = 0
    scored = np.zeros(len(users), dtype=bool)
    scored[kept] = rank_within_user(users[kept], rng) < n_scored[users[kept]]
    for code, part in ((1, "validation"), (2, "test")):
        if not scored[user_role == code].any():
            raise ValueError(
                f"protocol strong: none of the {int((role == code).sum())} {part} users keeps "
                f"strong_min_items = {config['strong_min_items']} items once the items no "
                "training user has are dropped, so there is nothing to score: lower "
                "strong_min_items or set strong_drop_unseen_items: False"
            )
    return ProtocolSplit(
        train=subset(dataset, user_role == 0),
        valid=subset(dataset, (user_role == 1) & scored),
        tests={"test": subset(dataset, (user_role == 2) & scored)},
        history=subset(dataset, kept & ((user_role == 0) | ~scored)),
    )


def cold_split(dataset):
    """Cold-start items: a seeded ``cold_item_ratio`` of the items with interactions is
    removed from training entirely; their interactions form the "cold" test split, ranked
    among cold items only. The other interactions are split by RecBole's eval_args, and
    their test part ("normal") is ranked among normal items only."""
    dataset._change_feat_format()
    rng = _split_rng(dataset)
    items = dataset.inter_feat[dataset.iid_field].numpy()
    with_inter = np.unique(items)
    n_cold = int(round(len(with_inter) * dataset.config["cold_item_ratio"]))
    if not 0 < n_cold < len(with_inter):
        raise ValueError(
            f"protocol cold: cold_item_ratio = {dataset.config['cold_item_ratio']} of the "
            f"{len(with_inter)} items with interactions makes {n_cold} cold items: it needs at "
            "least one cold item and one that trains"
        )
    cold_items = np.sort(rng.choice(with_inter, size=n_cold, replace=False))
    is_cold = np.isin(items, cold_items)
    warm, cold = subset(dataset, ~is_cold), subset(dataset, is_cold)
    train, valid, test = recbole_build(warm)
    normal_items = np.setdiff1d(np.arange(1, dataset.item_num), cold_items)
    dataset.cold_items = cold_items
    return ProtocolSplit(
        train,
        valid,
        {"normal": test, "cold": cold},
        excluded={"normal": cold_items, "cold": normal_items},
    )


def in_matrix_split(dataset):
    """In-matrix prediction (Wang & Blei 2011; DualNet's CiteULike2): users split
    ``known_user_ratio`` known / unknown (unknown users are left out); each known user's
    interactions split train / valid / test by ``in_matrix_ratio`` at random. A valid or
    test interaction whose item no training interaction has moves to training, so every
    evaluated item was seen in training."""
    config = dataset.config
    dataset._change_feat_format()
    rng = _split_rng(dataset)
    users = dataset.inter_feat[dataset.uid_field].numpy()
    items = dataset.inter_feat[dataset.iid_field].numpy()
    present = np.unique(users)
    known = np.zeros(dataset.user_num, dtype=bool)
    known[rng.permutation(present)[: int(round(len(present) * config["known_user_ratio"]))]] = True
    counts = np.bincount(users, minlength=dataset.user_num)
    ratio = np.asarray(config["in_matrix_ratio"], dtype=float)
    bounds = np.cumsum(ratio / ratio.sum())
    share = (rank_within_user(users, rng) + 0.5) / counts[
        users
    ]  # position in (0, 1) within the user
    role = np.searchsorted(bounds[:2], share)  # 0 train, 1 valid, 2 test
    role[~known[users]] = -1
    seen = np.zeros(dataset.item_num, dtype=bool)
    seen[items[role == 0]] = True
    role[(role > 0) & ~seen[items]] = 0
    return ProtocolSplit(
        train=subset(dataset, role == 0),
        valid=subset(dataset, role == 1),
        tests={"test": subset(dataset, role == 2)},
    )


PROTOCOL_BUILDERS = {"strong": strong_split, "cold": cold_split, "in-matrix": in_matrix_split}


def fold_in_history(dataset):
    """The protocol's fold-in history (train + held-out users' inputs: ``strong``), else None."""
    split = getattr(dataset, "protocol_split", None)
    return None if split is None else split.history
