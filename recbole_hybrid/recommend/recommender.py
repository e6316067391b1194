"""Top-k recommendations of a loaded model, in the dataset's external ids."""

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from recbole.utils import ModelType

from recbole_hybrid.model.abstract_recommender import binary_rows
from recbole_hybrid.recommend.abilities import COLD_START, FOLD_IN, CapabilityError, require
from recbole_hybrid.recommend.loading import load_data_and_model, scoring_history
from recbole_hybrid.recommend.new_items import read_new_items
from recbole_hybrid.recommend.scoring import score_known_users, score_new_users

RANKING_MODEL_TYPES = {ModelType.GENERAL, ModelType.TRADITIONAL}


class UnknownIdError(ValueError):
    """External user or item ids the model's dataset does not have."""


class Recommender:
    """Top-k recommendations of a loaded model, in the dataset's external ids."""

    def __init__(self, model, dataset, history):
        """``history``: the interactions the model scores its users from (``scoring_history``)."""
        if dataset.config["MODEL_TYPE"] not in RANKING_MODEL_TYPES:
            raise CapabilityError(
                f"{type(model).__name__}: recommend serves general models (user x item "
                f"full ranking), not {dataset.config['MODEL_TYPE'].name.lower()} models"
            )
        self.model, self.dataset = model, dataset
        self.seen = binary_rows(history.inter_matrix(form="csr"))

    @classmethod
    def from_checkpoint(cls, model_file, data_path=None):
        _, model, dataset, train_data, _, _ = load_data_and_model(model_file, data_path)
        return cls(model, dataset, scoring_history(dataset, train_data))

    def internal_ids(self, field, tokens, what):
        """Internal ids of external ids ``tokens``; UnknownIdError naming the unknown ones."""
        mapping = self.dataset.field2token_id[field]
        tokens = [str(t) for t in tokens]
        unknown = [t for t in tokens if t not in mapping or mapping[t] == 0]
        if unknown:
            raise UnknownIdError(
                f"unknown {what} ids (not in dataset {self.dataset.dataset_name}): {unknown[:20]}"
                + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
            )
        return np.array([mapping[t] for t in tokens], dtype=np.int64)

    def history_rows(self, histories):
        """Binary CSR [B, n_items] of new users' histories (lists of external item ids)."""
        items = [self.internal_ids(self.dataset.iid_field, h, "item") for h in histories]
        rows = np.repeat(np.arange(len(items)), [len(i) for i in items])
        cols = np.concatenate(items + [np.zeros(0, np.int64)])
        return binary_rows(
            sp.csr_matrix(
                (np.ones(len(cols)), (rows, cols)), shape=(len(items), self.dataset.item_num)
            )
        )

    def recommend(
        self, users=(), history=None, new_items=None, k=10, exclude_seen=True, candidates=None
    ):
        """Top-``k`` items, as a DataFrame (user, rank, item, score, new_item), of

        ``users``: external ids of the model's users;
        ``history``: a new user's items (external ids), or {name: items} for several (fold-in);
        ``new_items``: a ``.item``-style file or DataFrame of items unknown to the model, ranked
            with the others from their content (models with a cold-start path);
        ``candidates``: external ids of the known items to rank (default: all); new items are
            always ranked. ``exclude_seen``: leave out the items of each user's history."""
        new = None
        if new_items is not None:
            require(self.model, COLD_START)
            new = read_new_items(new_items, self.dataset, self.model)
        labels, scores, seen = [], [], []
        if len(users):
            ids = self.internal_ids(self.dataset.uid_field, users, "user")
            labels += [str(u) for u in users]
            seen.append(self.seen[ids])
            scores.append(score_known_users(self.model, ids, seen[-1], new))
        if history is not None:
            require(self.model, FOLD_IN)
            history = history if isinstance(history, Mapping) else {"new": history}
            labels += [str(name) for name in history]
            seen.append(self.history_rows(list(history.values())))
            scores.append(score_new_users(self.model, seen[-1], new))
        if not labels:
            raise ValueError(
                "recommend: give users (of the model) and/or a history (of a new user)"
            )
        keep = self.candidate_mask(candidates, new)
        return self.top_k(
            labels,
            torch.cat(scores),
            sp.vstack(seen).tocsr() if exclude_seen else None,
            keep,
            k,
            [] if new is None else new.ids,
        )

    def candidate_mask(self, candidates, new):
        """Bool [n_items + J]: the items that may be recommended (never RecBole's padding
        item 0)."""
        keep = np.zeros(self.dataset.item_num, dtype=bool)
        if candidates is None:
            keep[1:] = True
        else:
            keep[self.internal_ids(self.dataset.iid_field, candidates, "candidate item")] = True
        return torch.from_numpy(
            np.r_[keep, np.ones(0 if new is None else len(new.ids), dtype=bool)]
        )

    def top_k(self, labels, scores, seen, keep, k, new_ids):
        """The long table of each row's ``k`` best items among ``keep`` minus ``seen``."""
        scores = scores.masked_fill(~keep, -np.inf)
        if seen is not None:
            rows, cols = seen.nonzero()
            scores[torch.from_numpy(rows), torch.from_numpy(cols)] = -np.inf
        values, cols = torch.topk(scores, min(k, scores.shape[1]))
        n_items = self.dataset.item_num
        known = self.dataset.field2id_token[self.dataset.iid_field]
        records = [
            (label, rank + 1, known[c] if c < n_items else new_ids[c - n_items], v, c >= n_items)
            for label, row_v, row_c in zip(labels, values.tolist(), cols.tolist())
            for rank, (v, c) in enumerate(zip(row_v, row_c))
            if v > -np.inf
        ]
        return pd.DataFrame(records, columns=["user", "rank", "item", "score", "new_item"])
