"""Base class of this package's models: a RecBole GeneralRecommender that reads item
content from the HybridDataset (a model never reads files itself).

What a model can do is declared on its class (``capabilities``, model/capabilities.py).
Users and items the model was not trained on (``recbole_hybrid.recommend``) go through one
method, ``score_users(history, new_content=None, users=None)``: models that fold in users
(``fold_in``, or ``new_users = True`` without it) implement it, models that score new items
(``capabilities.scores_new_items``; ``cold_start`` per instance) accept ``new_content`` there. A
model that implements it is served by the recommend API and CLI with nothing else to add.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from recbole.model.abstract_recommender import GeneralRecommender

from recbole_hybrid.data.content import ContentError
from recbole_hybrid.model.capabilities import Capabilities
from recbole_hybrid.model.layers import csr_rows_sparse, idf_weights, normalize_bow


def in_token_order(dataset, items):
    """Internal item ids ``items`` sorted by their external tokens: an order independent of
    RecBole's remapping, which follows the row order of each split's .inter files. Content
    pretraining runs in it, so every split of a dataset trains (and caches) the same thing."""
    items = np.asarray(items)
    tokens = np.asarray(dataset.id2token(dataset.iid_field, items), dtype=str)
    return items[np.argsort(tokens, kind="stable")]


def as_csr(rows):
    """Rows given as a (dense or sparse) tensor, an array or a scipy matrix -> float32 CSR."""
    if isinstance(rows, torch.Tensor):
        rows = (rows.to_dense() if rows.is_sparse else rows).cpu().numpy()
    return sp.csr_matrix(rows, dtype=np.float32)


def binary_rows(matrix):
    """A 0/1 float32 CSR copy of an interaction matrix (implicit feedback)."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    matrix.data[:] = 1.0
    return matrix


@dataclass
class ItemField:
    """A ``.item`` field that new items give a model reading several (``new_item_fields``)."""

    name: str
    width: int = None  # float_seq: the vector length the model was trained on
    words: dict = field(
        default=None, repr=False
    )  # token_seq: the words it knows (others dropped, as in training)


class ContentRecommender(GeneralRecommender):
    """``input_rows = 'user'`` makes data_preparation train on user rows (autoencoders)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.cold_start = cls.capabilities.scores_new_items

    input_rows = None
    capabilities = Capabilities()
    cold_start = False  # this instance scores new items (score_users' new_content): its class's
    # capabilities.scores_new_items unless its settings rule it out (ContentKNN with item_reviews)
    new_users = False  # True: score_users scores users it was not trained on, without fold_in
    content_norm = None  # set by normalize_training_content
    content_name = None  # the content the model reads (set by item_content)
    has_content = None  # bool per item: has that content (set by item_content)
    _content_items = None  # its items with content, in external-token order (set by item_content)

    def item_content(self, dataset, name=None):
        """``ItemContent`` named ``name`` (default: the first of ``content_fields``)."""
        if not hasattr(dataset, "item_content"):
            raise ContentError(
                f"{type(self).__name__} needs item content: build the dataset with "
                "recbole_hybrid (run_recbole_hybrid / recbole_hybrid.data.create_dataset)"
            )
        names = dataset.content_names
        name = name or (names[0] if names else None)
        if name is None:
            raise ContentError(
                f"{type(self).__name__} needs item content: set content_fields in the dataset yaml"
            )
        content = dataset.item_content(name)
        self.content_name = content.name
        self.has_content = content.mask.numpy().astype(bool)
        self._content_items = in_token_order(dataset, np.flatnonzero(self.has_content))
        return content

    def content_items(self):
        """Items with content (of ``content_name``) in external-token order: what content
        pretraining and the content VAE's passes run over."""
        return self._content_items

    def score_users(self, history, new_content=None, users=None):
        """Scores [B, n_items + J] of B users for the model's items, then J new items.

        ``history``: the users' interactions, rows [B, n_items] (scipy / array / tensor); what a
        user unknown to the model (fold-in) is scored from. ``new_content``: raw content rows
        [J, content_width] of new items (the trained field and vocabulary, unnormalised), or,
        for a model with ``new_item_fields``, {field: J values (a vector, or a list of words)};
        None: J = 0. Only ``cold_start`` models accept it. ``users``: internal ids when the
        rows are the model's own users (models with per-user parameters, e.g. CVAE's U, score
        those); None for new users. For a known user's history the first n_items columns are
        ``full_sort_predict``'s. The model is not modified."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot score users from their history or new items from "
            "their content (no score_users)"
        )

    def new_item_fields(self):
        """[ItemField] of a model that reads several ``.item`` fields of new items; None: the one
        content ``content_name`` (rows [J, content_width])."""
        return None

    @property
    def content_width(self):
        """Columns of the content rows the model reads (vocabulary size or vector length)."""
        return self.content_matrix.shape[1]

    # ---- tensors derived from the weights for prediction, dropped when the weights may change ----
    _cache = None

    def invalidate_cache(self):
        self._cache = None

    def train(self, mode=True):
        self.invalidate_cache()
        return super().train(mode)

    def load_state_dict(self, state_dict, strict=True, **kwargs):
        self.invalidate_cache()
        return super().load_state_dict(state_dict, strict=strict, **kwargs)

    def after_pretraining(self):
        """Hook run by PretrainingTrainer once pretraining is done."""

    @torch.no_grad()
    def encode_rows(self, module, encode, rows, batch_size=4096):
        """``encode`` (a method of ``module``, run in eval mode) over the rows of a scipy CSR
        matrix, in batches given as sparse tensors; no gradient."""
        was_training = module.training
        module.eval()
        n = rows.shape[0]
        out = [
            encode(csr_rows_sparse(rows, np.arange(i, min(i + batch_size, n)), self.device))
            for i in range(0, max(n, 1), batch_size)
        ]
        module.train(was_training)
        return torch.cat(out)

    # ---- models with a content VAE (``content_vae`` over the CSR ``content_matrix``) ----
    def encode_content_rows(self, rows, batch_size=4096):
        """Posterior means mu of normalised content rows (scipy CSR)."""
        return self.encode_rows(self.content_vae, self.content_vae.mu_t, rows, batch_size)

    def content_means(self, items=None):
        """mu of the given items' content (all items by default), no gradient."""
        items = np.arange(self.content_matrix.shape[0]) if items is None else np.asarray(items)
        return self.encode_content_rows(self.content_matrix[items])

    def normalize_training_content(self, raw, mode, persistent=True):
        """The model's content input (``normalize_bow`` ``mode``) from the raw training
        content; what new items need from it (tfidf: the idf) is kept as a buffer
        (``persistent``: in the state_dict)."""
        self.content_norm = mode
        idf = idf_weights(raw) if mode == "tfidf" else np.zeros(0, dtype=np.float32)
        self.register_buffer("content_idf", torch.from_numpy(idf), persistent=persistent)
        return normalize_bow(raw, mode, idf if mode == "tfidf" else None)

    def normalize_content(self, content_rows):
        """New items' raw content rows (dense/sparse tensor, array or scipy) -> model input,
        normalised with the training content's statistics."""
        idf = self.content_idf.cpu().numpy() if self.content_norm == "tfidf" else None
        return normalize_bow(self.new_content_rows(content_rows), self.content_norm, idf)

    def new_content_rows(self, content):
        """New items' raw content (tensor, array or scipy; [n_new, vocab]) as float32 CSR,
        checked against the vocabulary the model was trained on."""
        content = as_csr(content)
        if content.shape[1] != self.content_width:
            raise ContentError(
                f"new items' content has {content.shape[1]} columns, the model was trained on "
                f"{self.content_width} (same vocabulary and field needed)"
            )
        return content

    def history_tensor(self, history, width=None):
        """History rows [B, n_items] (or up to ``width``: with new items' columns) as a dense
        float tensor on the model's device, zero-padded to ``width`` columns."""
        rows = torch.as_tensor(as_csr(history).toarray(), device=self.device)
        width = width or self.n_items
        if not self.n_items <= rows.shape[1] <= width:
            raise ValueError(
                f"history rows have {rows.shape[1]} columns, the model knows {self.n_items} items"
            )
        return torch.nn.functional.pad(rows, (0, width - rows.shape[1]))
