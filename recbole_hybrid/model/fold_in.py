"""Fold-in: a trained model scores users from histories it was not trained on (protocol
``strong``'s held-out users, recommend's new users) with what it learned untouched. Our models
implement ``fold_in``; RecBole's autoencoders, ItemKNN and EASE get the histories installed in
their own attributes."""

import copy

import numpy as np
import torch


def install_fold_in(model, history):
    """Give ``model`` the histories of all users (train + fold-in of held-out users) to
    score from; what it learned is untouched."""
    if hasattr(model, "fold_in"):
        model.fold_in(history)
    elif hasattr(model, "history_item_id"):  # RecBole's AutoEncoderMixin
        model.build_histroy_items(history)
    elif hasattr(model, "pred_mat"):  # RecBole's ItemKNN
        if model.method != "item":
            raise ValueError("ItemKNN folds in new users only with knn_method: item")
        model.interaction_matrix = history.inter_matrix(form="csr").astype(np.float32)
        model.pred_mat = model.interaction_matrix.dot(model.w).tolil()
    else:  # EASE
        model.interaction_matrix = history.inter_matrix(form="csr").astype(np.float32)


class HistoryRows:
    """Stands for a RecBole Dataset holding only new users' history rows (user r = row r):
    what ``install_fold_in`` reads."""

    def __init__(self, rows):
        self.rows = rows

    def inter_matrix(self, form="coo", value_field=None):
        return self.rows.asformat(form)

    def history_item_matrix(self, value_field=None, max_history_len=None):
        lengths = np.diff(self.rows.indptr)
        ids = np.zeros((self.rows.shape[0], max(int(lengths.max(initial=0)), 1)), dtype=np.int64)
        values = np.zeros(ids.shape, dtype=np.float32)
        for r in range(len(lengths)):
            ids[r, : lengths[r]] = self.rows.indices[self.rows.indptr[r] : self.rows.indptr[r + 1]]
            values[r, : lengths[r]] = 1.0
        return torch.from_numpy(ids), torch.from_numpy(values), torch.from_numpy(lengths)


def fold_in_copy(model, rows):
    """A shallow copy of ``model`` with ``rows`` installed as its users' histories (the model
    untouched)."""
    twin = copy.copy(model)
    for registry in ("_parameters", "_buffers", "_modules"):
        twin.__dict__[registry] = dict(model.__dict__[registry])
    install_fold_in(twin, HistoryRows(rows))
    return twin
