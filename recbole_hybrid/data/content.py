"""Item content features: atomic ``.item`` fields -> one tensor per content name,
aligned with RecBole's internal item ids, built once per dataset.

A content name ``X`` in the yaml list ``content_fields`` resolves to
  * ``X_ids: token_seq`` + ``X_counts: float_seq``  -> sparse bag-of-words (counts),
  * ``X: float_seq``                                  -> dense vector (every row the same length),
  * ``X: token_seq`` or ``X: token``                  -> sparse multi-hot (tags, genres...).
Items without a row in ``.item`` are an error unless ``content_missing: zero``; then their
row is all zeros and ``ItemContent.mask`` is False for them (row 0, RecBole's padding
item, is always masked).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from recbole.utils import FeatureType

MISSING_POLICIES = ("error", "zero")


class ContentError(ValueError):
    """Malformed or missing content; the message names the file and the field."""


@dataclass
class ItemContent:
    name: str
    matrix: torch.Tensor  # [n_items, dim], dense float32 or sparse COO (coalesced)
    mask: torch.Tensor  # [n_items] bool: True where the item has this content

    @property
    def is_sparse(self):
        return self.matrix.is_sparse

    @property
    def dim(self):
        return self.matrix.shape[1]

    def rows(self, item_ids):
        """Dense content rows of a batch of internal item ids."""
        if self.is_sparse:
            return self.matrix.index_select(0, item_ids.to(self.matrix.device)).to_dense()
        return self.matrix[item_ids]

    def to_scipy(self):
        """CSR matrix of the content (float32), for closed-form models and baselines."""
        if not self.is_sparse:
            return sp.csr_matrix(self.matrix.numpy())
        idx = self.matrix.indices().numpy()
        return sp.csr_matrix(
            (self.matrix.values().numpy(), (idx[0], idx[1])), shape=tuple(self.matrix.shape)
        )


def resolve_field_kind(name, field2type, item_file):
    """('bow', ids, counts) | ('dense', field) | ('tokens', field) for content name ``name``."""
    ids, counts = f"{name}_ids", f"{name}_counts"
    if ids in field2type and counts in field2type:
        if field2type[ids] != FeatureType.TOKEN_SEQ or field2type[counts] != FeatureType.FLOAT_SEQ:
            raise ContentError(
                f"{item_file}: content [{name}] needs {ids}:token_seq and {counts}:float_seq, "
                f"found {ids}:{field2type[ids].value} and {counts}:{field2type[counts].value}"
            )
        return "bow", ids, counts
    kind = field2type.get(name)
    if kind == FeatureType.FLOAT_SEQ:
        return "dense", name, None
    if kind in (FeatureType.TOKEN_SEQ, FeatureType.TOKEN):
        return "tokens", name, None
    if kind is not None:
        raise ContentError(
            f"{item_file}: content field [{name}] is {kind.value}; "
            "use float_seq (vector), token_seq (tokens) or the pair X_ids/X_counts (bag-of-words)"
        )
    raise ContentError(
        f"{item_file}: content field [{name}] not found (neither {name} nor {ids} + {counts}); "
        f"loaded fields: {sorted(field2type)}. Check content_fields and load_col in the yaml."
    )


def validate_raw_item_frame(df, iid_field, names, field2type, item_file):
    """Checks on the raw ``.item`` dataframe, before RecBole remaps or fills anything."""
    dup = df[iid_field][df[iid_field].duplicated()]
    if len(dup):
        raise ContentError(
            f"{item_file}: {len(dup)} duplicate rows for field {iid_field}, e.g. {list(dup[:5])}"
        )
    for name in names:
        kind, field, counts = resolve_field_kind(name, field2type, item_file)
        if kind == "dense":
            _check_dense_rows(df[field].values, df[iid_field].values, field, item_file)
        elif kind == "bow":
            _check_bow_rows(df, iid_field, field, counts, item_file)


def _check_dense_rows(rows, item_tokens, field, item_file):
    lengths = np.array([len(r) for r in rows])
    nonempty = lengths[lengths > 0]
    if len(nonempty) and (nonempty != nonempty[0]).any():
        bad = np.flatnonzero((lengths > 0) & (lengths != nonempty[0]))[:5]
        raise ContentError(
            f"{item_file}: field {field} has vectors of different lengths "
            f"({sorted(set(nonempty.tolist()))[:5]}); e.g. items {list(item_tokens[bad])} "
            f"differ from the first row's length {nonempty[0]}"
        )
    check_finite(rows, item_tokens, field, item_file)


def _check_bow_rows(df, iid_field, ids, counts, item_file):
    tokens = df[iid_field].values
    uneven = [t for t, a, b in zip(tokens, df[ids].values, df[counts].values) if len(a) != len(b)]
    if uneven:
        raise ContentError(
            f"{item_file}: {ids} and {counts} differ in length for {len(uneven)} items, "
            f"e.g. {uneven[:5]}"
        )
    check_finite(df[counts].values, tokens, counts, item_file)
    negative = [t for t, c in zip(tokens, df[counts].values) if len(c) and np.min(c) < 0]
    if negative:
        raise ContentError(f"{item_file}: negative counts in {counts}, e.g. items {negative[:5]}")


def check_finite(rows, item_tokens, field, item_file):
    bad = [t for t, r in zip(item_tokens, rows) if len(r) and not np.isfinite(r).all()]
    if bad:
        raise ContentError(
            f"{item_file}: field {field} holds NaN or inf for {len(bad)} items, e.g. {bad[:5]}"
        )


def items_with_content(df, iid_field, name, field2type, item_file):
    """Raw item tokens whose ``.item`` row holds a non-empty value for content ``name``."""
    _, field, _ = resolve_field_kind(name, field2type, item_file)
    values = df[field].values
    if field2type[field] == FeatureType.TOKEN:
        nonempty = [isinstance(v, str) and v != "" for v in values]
    else:
        nonempty = [len(v) > 0 for v in values]
    return set(df[iid_field].values[np.asarray(nonempty, dtype=bool)])


def build_item_content(dataset, name, mask):
    """``ItemContent`` of ``name`` from the processed ``dataset.item_feat``.

    ``mask``: bool tensor [n_items], True where the item has non-empty content ``name``;
    rows outside the mask are zero.
    """
    kind, field, counts = resolve_field_kind(name, dataset.field2type, dataset.item_file_path)
    feat = dataset.item_feat
    if not hasattr(feat, "interaction"):  # still a DataFrame before dataset.build()
        feat = dataset._dataframe_to_interaction(feat)
    mask = mask.clone()
    mask[0] = False  # RecBole's padding item
    if kind == "dense":
        matrix = feat[field].float() * mask.unsqueeze(1)
        return ItemContent(name, matrix.contiguous(), mask)
    token_ids = feat[field].long()
    if token_ids.dim() == 1:
        token_ids = token_ids.unsqueeze(1)
    if kind == "bow":
        weights = feat[counts].float()
    else:
        weights = torch.ones(token_ids.shape)
    vocab = len(dataset.field2id_token[field]) - 1  # token id 0 is RecBole's padding
    rows = torch.arange(dataset.item_num).unsqueeze(1).expand_as(token_ids)
    keep = (token_ids > 0) & mask.unsqueeze(1)
    matrix = torch.sparse_coo_tensor(
        torch.stack([rows[keep], token_ids[keep] - 1]),
        weights[keep],
        (dataset.item_num, vocab),
        check_invariants=False,
    ).coalesce()
    return ItemContent(name, matrix, mask)
