r"""Closed-form item-item models (EASE and its side-information variants): the shared math.

EASE (Steck, WWW'19): for a Gram matrix G (items x items) and an L2 weight lambda,

    P = (G + lambda I)^{-1},    B = I - P diagMat(1 / diag(P))    (so diag(B) = 0),

the minimiser of ||X - X B||^2 + lambda ||B||^2 subject to diag(B) = 0 when G = X^T X. The
inverse is a float32 Cholesky inverse (compat.spd_inverse). A user's scores are x_u B.

Memory is items x items: G, its inverse and B (float32) at once. ``check_item_count`` stops a
fit that would not fit in ``memory_gb`` before allocating anything.
"""

import math

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
from recbole.utils import InputType, ModelType

from recbole_hybrid.compat import spd_inverse
from recbole_hybrid.data.content import ContentError
from recbole_hybrid.model.abstract_recommender import ContentRecommender, as_csr, binary_rows
from recbole_hybrid.model.capabilities import Capabilities

MATRICES_AT_ONCE = 4  # G, its Cholesky factor / inverse, B, and a temporary (float32 each)


def largest_item_count(memory_gb):
    """The largest item count whose items x items matrices fit in ``memory_gb``."""
    return int(math.sqrt(memory_gb * 1e9 / (MATRICES_AT_ONCE * 4)))


def check_item_count(n_items, memory_gb, model):
    limit = largest_item_count(memory_gb)
    if n_items > limit:
        raise MemoryError(
            f"{model}: {n_items} items need {MATRICES_AT_ONCE} dense {n_items} x {n_items} float32 "
            f"matrices ({MATRICES_AT_ONCE * 4 * n_items**2 / 1e9:.1f} GB); "
            f"at most {limit} items fit in closed_form_memory_gb = {memory_gb}"
        )


def gram(rows, weight=1.0):
    """weight^2 R^T R as a dense float32 items x items array, for rows R (users or pseudo-users
    x items, sparse)."""
    rows = sp.csr_matrix(rows, dtype=np.float32)
    return np.asarray((rows.T @ rows).toarray(), dtype=np.float32) * np.float32(weight**2)


def ease_weights(gram_matrix, reg, inputs=None):
    """B of EASE for Gram matrix ``gram_matrix`` (modified in place) and L2 weight ``reg`` > 0.

    ``inputs`` (bool per item, optional): the items a history can hold. The others' rows of B
    are 0 and their columns the ridge regression on the inputs, B_IO = P G_IO with
    P = (G_II + lambda I)^{-1} (an output not among the inputs needs no diag(B) = 0); B_II is
    EASE on G_II. Weight never rests on an item that no user's row will contain."""
    if not reg > 0:
        raise ValueError(f"reg_weight {reg}: the closed form needs a positive L2 weight")
    if inputs is not None and not inputs.all():
        return _ease_on_inputs(gram_matrix, reg, np.flatnonzero(inputs))
    gram_matrix[np.diag_indices_from(gram_matrix)] += np.float32(reg)
    inverse = spd_inverse(gram_matrix)
    del gram_matrix
    return _constrained_weights(inverse)


def _constrained_weights(inverse):
    """B = I - P diagMat(1 / diag(P)) from P = (G + lambda I)^{-1}: diag(B) = 0."""
    weights = inverse / -np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32, copy=False)


def _ease_on_inputs(gram_matrix, reg, inputs):
    outputs = np.setdiff1d(np.arange(len(gram_matrix)), inputs)
    weights = np.zeros_like(gram_matrix, dtype=np.float32)
    cross = gram_matrix[np.ix_(inputs, outputs)]
    square = gram_matrix[np.ix_(inputs, inputs)]
    del gram_matrix
    square[np.diag_indices_from(square)] += np.float32(reg)
    inverse = spd_inverse(square)
    del square
    weights[np.ix_(inputs, outputs)] = inverse @ cross
    del cross
    weights[np.ix_(inputs, inputs)] = _constrained_weights(inverse)
    return weights


class ItemItemRecommender(ContentRecommender):
    """Scores x_u W for an items x items W fitted in closed form from the training interactions
    X (users x items) and the items' content S (items x words, as pseudo-users: S^T), by the
    subclass's ``item_weights(X, S^T)``. Users are scored from any history (fold-in); an item
    never seen in training is scored through its content (its X column is zero): items of the
    dataset without training interactions directly, new items (``score_users``) by refitting
    with their content rows added."""

    input_type = InputType.POINTWISE
    type = ModelType.TRADITIONAL
    capabilities = Capabilities(folds_in_users=True, scores_new_items=True)

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.dummy_param = nn.Parameter(torch.zeros(1))  # RecBole's trainer needs one
        self.memory_gb = config["closed_form_memory_gb"]
        self.untrained_inputs = config["untrained_inputs"]
        if self.untrained_inputs not in ("keep", "drop"):
            raise ValueError(f"untrained_inputs [{self.untrained_inputs}]: keep or drop")
        check_item_count(self.n_items, self.memory_gb, type(self).__name__)
        content = self.item_content(dataset, config["content_field"])
        if not content.is_sparse:
            raise ContentError(
                f"{type(self).__name__} reads sparse content (bag-of-words, tags, multi-hot) as "
                f"pseudo-users; content [{self.content_name}] is a dense vector: set content_field "
                "to a sparse field"
            )
        self.side_rows = sp.csr_matrix(
            self.normalize_training_content(
                content.to_scipy(), config["content_norm"], persistent=False
            ).T
        )
        self.interaction_matrix = binary_rows(dataset.inter_matrix(form="csr"))
        self.item_similarity = self.item_weights(self.interaction_matrix, self.side_rows)
        self.other_parameter_name = ["interaction_matrix", "item_similarity"]

    def item_weights(self, interactions, side_rows):
        raise NotImplementedError

    def inputs(self, interactions):
        """The items a history may hold, for ``ease_weights``: every item (None), or with
        ``untrained_inputs: drop`` those with training interactions."""
        if self.untrained_inputs == "keep":
            return None
        return np.asarray(interactions.getnnz(axis=0) > 0)

    @property
    def content_matrix(self):
        """The items' normalised content rows (items x words)."""
        return self.side_rows.T.tocsr()

    def fold_in(self, history_dataset):
        """Score users from the interactions of ``history_dataset`` (new users' fold-in)."""
        self.interaction_matrix = binary_rows(history_dataset.inter_matrix(form="csr"))

    def calculate_loss(self, interaction):
        return nn.Parameter(torch.zeros(1))

    def scores(self, history, weights):
        return torch.from_numpy(np.asarray(history @ weights, dtype=np.float32)).to(self.device)

    def predict(self, interaction):
        users = interaction[self.USER_ID].cpu().numpy()
        items = interaction[self.ITEM_ID].cpu().numpy()
        rows = self.interaction_matrix[users]
        values = np.asarray(rows.multiply(self.item_similarity[:, items].T).sum(axis=1)).ravel()
        return torch.from_numpy(values.astype(np.float32)).to(self.device)

    def full_sort_predict(self, interaction):
        users = interaction[self.USER_ID].cpu().numpy()
        return self.scores(self.interaction_matrix[users], self.item_similarity).view(-1)

    def score_users(self, history, new_content=None, users=None):
        """``ContentRecommender.score_users``: x_u W; new items by refitting W with their
        content rows (and empty interaction columns) appended."""
        weights = self.item_similarity
        if new_content is not None:
            new_rows = self.normalize_content(new_content)
            n_all = self.n_items + new_rows.shape[0]
            check_item_count(n_all, self.memory_gb, type(self).__name__)
            interactions = sp.hstack(
                [
                    self.interaction_matrix,
                    sp.csr_matrix((self.interaction_matrix.shape[0], new_rows.shape[0])),
                ]
            ).tocsr()
            weights = self.item_weights(
                interactions, sp.vstack([self.side_rows.T, new_rows]).T.tocsr()
            )
        rows = as_csr(history)
        rows = sp.hstack(
            [rows, sp.csr_matrix((rows.shape[0], weights.shape[0] - rows.shape[1]))]
        ).tocsr()
        return self.scores(rows, weights)
