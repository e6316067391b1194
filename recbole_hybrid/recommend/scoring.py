"""Scores of the model's users, and of new users (fold-in), over the known items and any new
items; RecBole's fold-in models score new users on a copy that holds their histories."""

import numpy as np
import torch
from recbole.data.interaction import Interaction

from recbole_hybrid.model.fold_in import fold_in_copy
from recbole_hybrid.recommend.abilities import implements_score_users

BATCH_USERS = 512


def _full_sort(model, users):
    users = torch.as_tensor(users, device=model.device)
    return model.full_sort_predict(Interaction({model.USER_ID: users})).view(len(users), -1)


def _in_batches(score, n, batch_size=BATCH_USERS):
    """torch.cat of ``score(slice)`` over slices of ``n`` users."""
    return torch.cat(
        [score(slice(i, i + batch_size)).cpu() for i in range(0, max(n, 1), batch_size)]
    )


@torch.no_grad()
def score_known_users(model, users, history, new):
    """Scores [B, n_items (+ J)] of the model's users (internal ids; ``history``: their rows)."""
    if new is None:
        return _in_batches(lambda s: _full_sort(model, users[s]), len(users))
    return _in_batches(
        lambda s: model.score_users(history[s], new.content, users=torch.as_tensor(users[s])),
        len(users),
    )


@torch.no_grad()
def score_new_users(model, history, new):
    """Scores [B, n_items (+ J)] of new users given their history rows (binary CSR)."""
    content = None if new is None else new.content
    if implements_score_users(model):
        return _in_batches(lambda s: model.score_users(history[s], content), history.shape[0])
    return _in_batches(
        lambda s: _full_sort(fold_in_copy(model, history[s]), np.arange(history[s].shape[0])),
        history.shape[0],
    )
