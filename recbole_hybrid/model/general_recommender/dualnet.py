r"""DualNet: collaborative deep embedding via dual networks.

Reference: Yilei Xiong, Dahua Lin, Haoying Niu, Jiefeng Cheng and Zhenguo Li,
"Collaborative Deep Embedding via Dual Networks" (2017; ../shared/papers/DualNet-CDE.md).

An item network f(x_j; W_v) on item j's content and a user network g(r_i; W_u) on user
i's history row r_i (eq. 3: the user encoder generalises WMF's u_i = W_u r_i of eq. 2),
trained on the confidence-weighted squared loss of eq. (4):

    min_{W_u, W_v}  sum_ij c_ij (R_ij - s_ij)^2,   c_ij = a if R_ij = 1 else b.

Both networks have L aligned levels (``hidden_sizes``, 200-200-50 by default; tanh between
layers, the top layer linear). The matching s_ij of the three designs (section 3.2, Fig. 1):

    basic        s = <f_L, g_L>
    multilevel   s = sum_l <f_l, g_l>
    branching    s = sum_{l<L} <B^v_l f_l, B^u_l g_l> + <f_L, g_L>   (B: linear matching branches)

so s = <m_v(x_j), m_u(r_i)> with m the concatenation of the matched vectors; items are
encoded once per evaluation. Training (``recbole_hybrid.trainer.DualNetTrainer``, section 4):
stacked denoising pretraining of the item network, layer-by-layer refinement, then epochs of
dual mini-batches (B_u users x B_v items, the whole block of R; every block once per epoch),
with noise injection (``user_noise`` / ``item_noise``: a fraction of input entries set to 0).

Choices where the paper is silent (yaml keys in properties/model/DualNet.yaml):
  * ``dual_update: alternate`` - consecutive dual mini-batches update the item network, then
    the user network (the other side is a fixed target); ``joint`` updates both per batch.
  * The loss of a block is summed over its items and averaged over its users.
  * Item network input: unit-length TF-IDF rows of the bag-of-words (``content_norm``; chosen
    on validation over x_j / max(x_j), see benchmarks/results/dualnet.md); user network input:
    the binary history row.
  * Items without training interactions (cold items, test-only items of a fixed split) are
    not in any training block (their zero row of R would teach "never") and are scored from
    their content like any other item. Items with an empty document get the item network's
    encoding of an empty input (one shared vector): documented fallback, tested.
  * Columns of the user input for items no training user has are zero at prediction (their
    first-layer weights were never trained); fold-in users are encoded from the rest.
"""

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
from recbole.utils import InputType

from recbole_hybrid.model.abstract_recommender import ContentRecommender, as_csr
from recbole_hybrid.model.capabilities import Capabilities
from recbole_hybrid.model.layers import (
    activation,
    csr_rows_sparse,
    input_major_,
    l2_normalize_rows,
    linear_any,
    mask_noise,
    xavier_init,
)

DESIGNS = ("basic", "multilevel", "branching")


class Tower(nn.Module):
    """One side of the dual networks: L levels h_l = act(W_l h_{l-1} + b_l) (top level linear)
    and, in the branching design, a linear matching branch B_l for each level below the top."""

    def __init__(self, input_dim, sizes, act="tanh", design="branching"):
        super().__init__()
        dims = [input_dim] + list(sizes)
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        input_major_(self.linears[0])  # fed sparse rows (histories, bag-of-words)
        self.act = activation(act)
        self.design = design
        self.branches = (
            nn.ModuleList(nn.Linear(d, d) for d in sizes[:-1]) if design == "branching" else None
        )

    @property
    def depth(self):
        return len(self.linears)

    def levels(self, x, depth=None):
        """[h_1, ..., h_depth]; ``x`` dense or sparse. The deepest level computed is linear
        only when it is the network's top (a truncated network ends in the activation)."""
        out, h = [], x
        for level, linear in enumerate(self.linears[: depth or self.depth]):
            h = linear_any(h, linear.weight, linear.bias)
            if level < self.depth - 1:
                h = self.act(h)
            out.append(h)
        return out

    def matching(self, x, depth=None):
        """m(x): the concatenation of the vectors whose dot products sum to the score."""
        hs = self.levels(x, depth)
        if self.design == "basic":
            return hs[-1]
        if self.design == "multilevel":
            return torch.cat(hs, 1)
        return torch.cat(
            [
                self.branches[level](h) if level < self.depth - 1 else h
                for level, h in enumerate(hs)
            ],
            1,
        )


def confidence_weighted_loss(scores, targets, a, b):
    """Eq. (4) on a block: sum_j c_ij (R_ij - s_ij)^2, averaged over the block's users."""
    c = b + (a - b) * targets
    return (c * (targets - scores).pow(2)).sum() / max(scores.shape[0], 1)


class DualNet(ContentRecommender):
    input_type = InputType.POINTWISE
    input_rows = (
        "user"  # the loader yields user batches; DualNetTrainer pairs them with item batches
    )
    capabilities = Capabilities(folds_in_users=True, scores_new_items=True)  # both towers encode

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        design = config["design"]
        if design not in DESIGNS:
            raise ValueError(f"DualNet design [{design}]: one of {', '.join(DESIGNS)}")
        self.design = design
        self.a, self.b = config["confidence_a"], config["confidence_b"]
        self.user_noise, self.item_noise = config["user_noise"], config["item_noise"]
        self.user_input_norm = config["user_input_norm"]
        if self.user_input_norm not in ("l2", "none"):
            raise ValueError(f"user_input_norm [{self.user_input_norm}]: l2 or none")

        content = self.item_content(dataset, config["content_field"])
        self.content_matrix = self.normalize_training_content(
            content.to_scipy(), config["content_norm"]
        )

        train = dataset.inter_matrix(form="csr").astype(np.float32)
        train.data[:] = 1.0
        self.train_matrix = train  # R over training users x all items
        self.trained = np.asarray(train.getnnz(axis=0) > 0)  # items with training interactions
        self.history = train  # rows the user network reads at prediction (fold-in replaces it)

        sizes, act = list(config["hidden_sizes"]), config["activation"]
        self.user_net = Tower(self.n_items, sizes, act, design)  # g(r_i; W_u)
        self.item_net = Tower(self.content_matrix.shape[1], sizes, act, design)  # f(x_j; W_v)
        xavier_init(self)

    # ---- inputs ----
    def trained_items(self):
        """Items in the training blocks: those with training interactions."""
        return np.flatnonzero(self.trained)

    def content_rows(self, items):
        return csr_rows_sparse(self.content_matrix, items, self.device)

    def history_rows(self, users, matrix=None):
        """User network input: history rows (binary; ``user_input_norm: l2`` scales each row
        to unit length, so a long history does not saturate the first layer)."""
        rows = (self.history if matrix is None else matrix)[np.asarray(users)]
        if self.user_input_norm == "l2":
            rows = l2_normalize_rows(rows)
        return csr_rows_sparse(rows.tocsr(), np.arange(rows.shape[0]), self.device)

    def fold_in(self, history_dataset):
        """Users unseen in training (protocol ``strong``) are encoded from these histories."""
        self.history = self._known_columns(history_dataset.inter_matrix(form="csr"))

    def _known_columns(self, matrix):
        """Binary history rows restricted to items with training interactions."""
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        matrix.data[:] = 1.0
        return (matrix @ sp.diags(self.trained.astype(np.float32))).tocsr()

    # ---- networks ----
    def user_vectors(self, r, depth=None):
        if self.training:
            r = mask_noise(r, self.user_noise)
        return self.user_net.matching(r, depth)

    def item_vectors(self, x, depth=None):
        if self.training:
            x = mask_noise(x, self.item_noise)
        return self.item_net.matching(x, depth)

    def block_loss(self, users, items, update="both", depth=None):
        """Eq. (4) on the dual mini-batch ``users`` x ``items`` (internal ids). ``update``:
        'user' / 'item' computes the other side without gradient (a fixed target)."""
        rows = self.train_matrix[np.asarray(users)]  # the users' R rows: network input and targets
        with torch.set_grad_enabled(update in ("both", "user")):
            u = self.user_vectors(self.history_rows(np.arange(rows.shape[0]), rows), depth)
        with torch.set_grad_enabled(update in ("both", "item")):
            v = self.item_vectors(self.content_rows(items), depth)
        targets = torch.from_numpy(rows[:, np.asarray(items)].toarray()).to(self.device)
        return confidence_weighted_loss(u @ v.t(), targets, self.a, self.b)

    def calculate_loss(self, interaction):
        """Eq. (4) for a batch of users against every trained item (both networks)."""
        return self.block_loss(interaction[self.USER_ID].cpu().numpy(), self.trained_items())

    # ---- prediction (item vectors cached until train() / load_state_dict) ----
    def encode_items(self, content_rows, batch_size=4096):
        """m_v of normalised content rows (scipy CSR): eval mode (no noise), batched."""
        return self.encode_rows(self.item_net, self.item_net.matching, content_rows, batch_size)

    def all_item_vectors(self):
        if self._cache is None:
            self._cache = self.encode_items(self.content_matrix)
        return self._cache

    @torch.no_grad()
    def encode_users(self, rating_matrix):
        """m_u of history rows (dense tensor/array or scipy, [B, n_items]): unseen users too."""
        rating_matrix = as_csr(rating_matrix)
        if rating_matrix.shape[1] != self.n_items:
            raise ValueError(
                f"history rows have {rating_matrix.shape[1]} columns, "
                f"the model knows {self.n_items} items"
            )
        rows = self._known_columns(rating_matrix)
        return self.user_net.matching(self.history_rows(np.arange(rows.shape[0]), rows))

    def users_matching(self, users):
        """m_u of users by id, from their history (training rows, or fold-in rows)."""
        return self.user_net.matching(self.history_rows(users.cpu().numpy()))

    def predict(self, interaction):
        users, items = interaction[self.USER_ID], interaction[self.ITEM_ID]
        return (self.users_matching(users) * self.all_item_vectors()[items]).sum(1)

    def full_sort_predict(self, interaction):
        return (self.users_matching(interaction[self.USER_ID]) @ self.all_item_vectors().t()).view(
            -1
        )

    @torch.no_grad()
    def score_users(self, history, new_content=None, users=None):
        """``ContentRecommender.score_users``: users encoded from their history rows, new
        items from their raw content by the item network (no retraining)."""
        items = self.all_item_vectors()
        if new_content is not None:
            items = torch.cat([items, self.encode_items(self.normalize_content(new_content))])
        return self.encode_users(history) @ items.t()
