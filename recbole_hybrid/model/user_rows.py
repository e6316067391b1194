"""Sparse user rows for the user-row models (Multi-VAE style encoders: MDCVAE, MDsymCVAE).

A batch of users' rating rows r_u (n_items wide, a few dozen non-zeros each) kept as its
non-zeros only, so that what the dense path does over [batch x n_items] costs what the rows
hold:

  L2 normalisation and dropout   on the stored values (dropout as F.dropout: kept values
                                 scaled by 1 / (1 - p); zeros stay zero either way)
  r W  (first encoder layer)     F.embedding_bag over the rows' items, weighted by their
                                 values: forward and weight gradient follow the non-zeros
  multinomial log-likelihood     sum_j r_uj log softmax(l_u)_j
                                 = sum_j r_uj l_uj - (sum_j r_uj) logsumexp(l_u), gathered
                                 (model/likelihoods.py, gradient in one pass)
The math is the dense path's (tests/test_user_rows.py: same loss and gradients, dropout off).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from recbole_hybrid.model.likelihoods import multinomial_nll_parts, row_sums, sparse_parts


@dataclass
class SparseRows:
    items: torch.Tensor  # [nnz] item id of each stored value
    values: torch.Tensor  # [nnz]
    row: torch.Tensor  # [nnz] row (user in the batch) of each stored value
    offsets: torch.Tensor  # [B] start of each row in items / values
    n_rows: int

    @classmethod
    def from_history(cls, history_item_id, history_item_value, users):
        """Rows of ``users`` from RecBole's history matrices (AutoEncoderMixin; item 0 pads)."""
        ids, values = history_item_id[users], history_item_value[users].float()
        ids, order = ids.sort(1)  # by item within a row, as from_dense: sums in the same order
        return cls._from_padded(ids, values.gather(1, order))

    @classmethod
    def from_dense(cls, matrix):
        """Rows of a dense [B, n] rating matrix (its non-zeros, by item within a row)."""
        row, items = matrix.nonzero(as_tuple=True)
        return cls.from_entries(row, items, matrix[row, items].float(), len(matrix))

    @classmethod
    def from_sparse(cls, matrix):
        """Rows of a sparse COO [B, n] matrix (its stored values, by column within a row)."""
        row, items, values = sparse_parts(matrix)
        return cls.from_entries(row, items, values, matrix.shape[0])

    @classmethod
    def from_entries(cls, row, items, values, n_rows):
        """Rows from their entries, sorted by row."""
        counts = torch.bincount(row, minlength=n_rows)
        return cls(items, values, row, torch.cumsum(counts, 0) - counts, n_rows)

    @classmethod
    def _from_padded(cls, ids, values):
        stored = ids > 0
        row = torch.arange(len(ids), device=ids.device).repeat_interleave(stored.sum(1))
        return cls.from_entries(row, ids[stored], values[stored], len(ids))

    def first_columns(self, n):
        """The rows' entries of items < ``n`` (an encoder layer that knows n items)."""
        keep = self.items < n
        if bool(keep.all()):
            return self
        return SparseRows.from_entries(
            self.row[keep], self.items[keep], self.values[keep], self.n_rows
        )

    def with_values(self, values):
        return SparseRows(self.items, values, self.row, self.offsets, self.n_rows)

    def row_sums(self, values=None):
        return row_sums(self.values if values is None else values, self.row, self.n_rows)

    def normalized(self, eps=1e-12):
        """Each row at unit L2 length (``F.normalize``)."""
        norms = self.row_sums(self.values.pow(2)).sqrt().clamp_min(eps)
        return self.with_values(self.values / norms[self.row])

    def dropout(self, p, training):
        return self.with_values(F.dropout(self.values, p, training=training))

    def matmul(self, weight, sparse_grad=False):
        """r W: [B, d] for ``weight`` [n_items, d]; ``sparse_grad``: W's gradient as its
        selected rows only (a sparse tensor)."""
        return F.embedding_bag(
            self.items,
            weight,
            self.offsets,
            mode="sum",
            per_sample_weights=self.values.to(weight.dtype),
            sparse=sparse_grad,
        )

    def multinomial_log_likelihood(self, logits):
        """sum_j r_uj log softmax(logits_u)_j per row, [B] (model/likelihoods.py)."""
        return -multinomial_nll_parts(logits, self.row, self.items, self.values)

    def to_dense(self, n_items):
        dense = torch.zeros(self.n_rows, n_items, device=self.values.device)
        dense[self.row, self.items] = self.values
        return dense
