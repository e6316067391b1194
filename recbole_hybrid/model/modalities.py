"""Content modalities shared by the multimodal models (DEAMER, LRMM).

yaml keys read here (see properties/model/DEAMER.yaml, LRMM.yaml):
  user_document  reviews: the user's training reviews | history: the sequence of the content
                 vectors (``history_field``) of her training items (no reviews, e.g. lfm2k)
  meta_field     ``.item`` token_seq (its words, via the review Doc2Vec's word vectors) or
                 float_seq (a vector)
  dense_field    ``.item`` float_seq of the dense / visual modality
  finetune_text, text_unit, max_doc_units, max_meta_words, review_field, d2v_*
                 (recbole_hybrid/data/reviews.py)
Documents are built from the training split only (the dataset RecBole gives the model).
Users and items the model was not trained on (``score_users``) go through the same encoders:
``new_user_encodings``, ``new_item_encodings``.
"""

from collections.abc import Mapping

import numpy as np
import torch
from recbole.utils import FeatureType

from recbole_hybrid.data.content import ContentError, check_finite
from recbole_hybrid.data.reviews import (
    history_documents,
    pad_sequences,
    review_documents,
    word_sequences,
)
from recbole_hybrid.model.abstract_recommender import ItemField, as_csr
from recbole_hybrid.model.layers import VectorEncoder

USER_DOCUMENTS = ("reviews", "history")


def is_token_seq(dataset, field):
    return field is not None and dataset.field2type.get(field) == FeatureType.TOKEN_SEQ


def vector_encoder(model, dataset, field, hidden):
    """VectorEncoder of a dense ``.item`` float_seq field (absent rows: mask False)."""
    content = model.item_content(dataset, field)
    if content.is_sparse:
        raise ContentError(
            f"{dataset.item_file_path}: field [{field}] must be a dense float_seq vector"
        )
    return VectorEncoder(content.matrix, hidden, content.mask)


def content_encoders(
    model, config, dataset, hidden, text_encoder, meta_field=None, dense_field=None
):
    """Encoders of the content modalities, in this order (so a seed gives the same weights):
      'item'   the item's training reviews (``user_document: reviews`` only),
      'user'   the user's document (her training reviews, or her history's item vectors),
      'meta'   the item's metadata (``meta_field``: token_seq -> ``text_encoder`` over its words,
               float_seq -> a VectorEncoder), when ``meta_field`` is given,
      'dense'  the item's dense vector (``dense_field``), when given,
      'own'    with reviews: the ``PairReviews`` lookup of each training pair's own review.
    ``text_encoder(documents, hidden, finetune)`` builds a document encoder (SequenceEncoder,
    MeanPoolEncoder). Every encoder has ``mask(rows)``: the row has that content; 'meta' and
    'dense' know their ``field``, 'user' whether it reads the history (``reads_history``)."""
    meta_is_text = is_token_seq(dataset, meta_field)
    finetune = config["finetune_text"]
    encoders = {}
    if config["user_document"] == "reviews":
        docs = review_documents(dataset, config, meta_field if meta_is_text else None)
        encoders["item"] = text_encoder(docs["item"], hidden, finetune)
        encoders["own"] = docs["own"]
    elif config["user_document"] == "history":
        if meta_is_text:
            raise ContentError(
                f"meta_field [{meta_field}] is text (token_seq): its word vectors come from the "
                "reviews' Doc2Vec, which user_document: history does not train; use a "
                "float_seq meta_field"
            )
        docs = {
            "user": history_documents(
                dataset,
                model.item_content(dataset, config["history_field"]).matrix,
                config["max_doc_units"],
            )
        }
    else:
        raise ValueError(
            f"user_document [{config['user_document']}] must be one of {USER_DOCUMENTS}"
        )
    encoders["user"] = text_encoder(docs["user"], hidden, finetune)
    encoders["user"].reads_history = config["user_document"] == "history"
    if meta_field is not None:
        encoders["meta"] = (
            text_encoder(docs["meta"], hidden, finetune)
            if meta_is_text
            else vector_encoder(model, dataset, meta_field, hidden)
        )
        encoders["meta"].field = meta_field
    if dense_field is not None:
        if not dense_field:
            raise ContentError(
                "the dense modality needs dense_field: a float_seq field of "
                f"{dataset.item_file_path}"
            )
        encoders["dense"] = vector_encoder(model, dataset, dense_field, hidden)
        encoders["dense"].field = dense_field
    return encoders


# ---- users and items the model was not trained on (score_users)
def item_fields(encoders):
    """[ItemField] of the ``.item`` fields the item ``encoders`` read: what a new item gives."""
    fields = {}
    for enc in encoders:
        if enc.field is not None and enc.field not in fields:
            fields[enc.field] = (
                ItemField(enc.field, width=enc.width)
                if isinstance(enc, VectorEncoder)
                else ItemField(enc.field, words=enc.vocab)
            )
    return list(fields.values())


def new_item_count(new_content):
    """J of ``new_content`` ({field: J values}; None: 0)."""
    if new_content is None:
        return 0
    if not isinstance(new_content, Mapping):
        raise ContentError(
            "new items' content must be {field: one value per new item} for a model "
            "reading several .item fields"
        )
    counts = {field: len(values) for field, values in new_content.items()}
    if len(set(counts.values())) > 1:
        raise ContentError(f"new items' fields differ in their number of items: {counts}")
    return next(iter(counts.values()), 0)


def _absent(encoder, n, device):
    return torch.zeros(n, encoder.output_size, device=device), torch.zeros(
        n, dtype=torch.bool, device=device
    )


def new_vectors(values, width, field):
    """(vectors [J, width], present [J]) of J values of float_seq ``field`` (empty: absent)."""
    rows = [np.asarray(v, dtype=np.float32).ravel() for v in values]
    bad = [(j, len(r)) for j, r in enumerate(rows) if len(r) not in (0, width)]
    if bad:
        raise ContentError(
            f"new items: field {field} needs vectors of length {width} (what the model was "
            f"trained on), found (row, length) {bad[:5]}"
        )
    check_finite(rows, list(range(len(rows))), field, "new items")
    vectors = np.zeros((len(rows), width), np.float32)
    for j, r in enumerate(rows):
        vectors[j, : len(r)] = r
    return torch.from_numpy(vectors), torch.tensor([len(r) > 0 for r in rows], dtype=torch.bool)


def new_item_encodings(encoder, new_content, n_new, device):
    """(e [J, d], present [J]) of J new items through an item ``encoder``: its field's values in
    ``new_content`` (a vector; or words -> Doc2Vec word ids, unknown words dropped and the last
    ``max_len`` kept, as for the training items); a training-review encoder (no field): absent,
    a new item has no review."""
    if encoder.field is None or n_new == 0:
        return _absent(encoder, n_new, device)
    if encoder.field not in new_content:
        raise ContentError(
            f"new items: no field [{encoder.field}] "
            f"(the model reads it; given: {sorted(new_content)})"
        )
    values = new_content[encoder.field]
    if isinstance(encoder, VectorEncoder):
        vectors, present = new_vectors(values, encoder.width, encoder.field)
        return encoder.encode(vectors.to(device)), present.to(device)
    ids, lengths = pad_sequences(
        word_sequences([[str(w) for w in v] for v in values], encoder.vocab), encoder.max_len
    )
    return encoder.encode(ids.to(device), lengths.to(device)), (lengths > 0).to(device)


def new_user_encodings(encoder, history, n_items, device):
    """(e [B, d], present [B]) of B new users through the user ``encoder``: with ``user_document:
    history`` her document is her history rows' items ([B, n_items]) in item id order (the rows
    carry no time order), the last ``max_len`` kept; with reviews it is empty (she has none)."""
    rows = as_csr(history).copy()
    if not encoder.reads_history or rows.shape[0] == 0:
        return _absent(encoder, rows.shape[0], device)
    rows = rows[:, :n_items]
    rows.eliminate_zeros()
    rows.sort_indices()
    ids, lengths = pad_sequences(
        [rows.indices[rows.indptr[r] : rows.indptr[r + 1]].tolist() for r in range(rows.shape[0])],
        encoder.max_len,
    )
    return encoder.encode(ids.to(device), lengths.to(device)), (lengths > 0).to(device)


def training_ratings(config, dataset, who):
    """(rating field, the training ratings as floats); a clear error when the dataset has none."""
    field = config["RATING_FIELD"]
    if not field or field not in dataset.field2type:
        raise ValueError(
            f"{who} needs ratings: dataset {config['dataset']} has no rating field loaded "
            f"(RATING_FIELD: {field})"
        )
    return field, dataset.inter_feat[field].float()


def own_reviews(config, encoders):
    """The ``PairReviews`` to leave each training pair's own review out of its documents
    (``own_review: exclude``), or None (``include``, or no reviews)."""
    choice = config["own_review"]
    if choice not in ("exclude", "include"):
        raise ValueError(f"own_review [{choice}] must be exclude or include")
    return encoders.get("own") if choice == "exclude" else None


def encode_all(encode, n, device, batch_size=1024):
    """``encode(rows)`` over rows 0..n-1 in batches, concatenated."""
    rows = torch.arange(n, device=device)
    return torch.cat([encode(rows[i : i + batch_size]) for i in range(0, n, batch_size)])
