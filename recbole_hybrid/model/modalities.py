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
"""
import torch
from recbole.utils import FeatureType

from recbole_hybrid.data.content import ContentError
from recbole_hybrid.data.reviews import history_documents, review_documents
from recbole_hybrid.model.layers import VectorEncoder

USER_DOCUMENTS = ("reviews", "history")


def is_token_seq(dataset, field):
    return field is not None and dataset.field2type.get(field) == FeatureType.TOKEN_SEQ


def vector_encoder(model, dataset, field, hidden):
    """VectorEncoder of a dense ``.item`` float_seq field (absent rows: mask False)."""
    content = model.item_content(dataset, field)
    if content.is_sparse:
        raise ContentError(f"{dataset.item_file_path}: field [{field}] must be a dense float_seq vector")
    return VectorEncoder(content.matrix, hidden, content.mask)


def content_encoders(model, config, dataset, hidden, text_encoder, meta_field=None, dense_field=None):
    """Encoders of the content modalities, in this order (so a seed gives the same weights):
      'item'   the item's training reviews (``user_document: reviews`` only),
      'user'   the user's document (her training reviews, or her history's item vectors),
      'meta'   the item's metadata (``meta_field``: token_seq -> ``text_encoder`` over its words,
               float_seq -> a VectorEncoder), when ``meta_field`` is given,
      'dense'  the item's dense vector (``dense_field``), when given,
      'own'    with reviews: the ``PairReviews`` lookup of each training pair's own review.
    ``text_encoder(documents, hidden, finetune)`` builds a document encoder (SequenceEncoder,
    MeanPoolEncoder). Every encoder has ``mask(rows)``: the row has that content."""
    meta_is_text = is_token_seq(dataset, meta_field)
    finetune = config["finetune_text"]
    encoders = {}
    if config["user_document"] == "reviews":
        docs = review_documents(dataset, config, meta_field if meta_is_text else None)
        encoders["item"] = text_encoder(docs["item"], hidden, finetune)
        encoders["own"] = docs["own"]
    elif config["user_document"] == "history":
        if meta_is_text:
            raise ContentError(f"meta_field [{meta_field}] is text (token_seq): its word vectors come from the "
                               "reviews' Doc2Vec, which user_document: history does not train; use a "
                               "float_seq meta_field")
        docs = {"user": history_documents(dataset, model.item_content(dataset, config["history_field"]).matrix,
                                          config["max_doc_units"])}
    else:
        raise ValueError(f"user_document [{config['user_document']}] must be one of {USER_DOCUMENTS}")
    encoders["user"] = text_encoder(docs["user"], hidden, finetune)
    if meta_field is not None:
        encoders["meta"] = (text_encoder(docs["meta"], hidden, finetune) if meta_is_text
                            else vector_encoder(model, dataset, meta_field, hidden))
    if dense_field is not None:
        if not dense_field:
            raise ContentError(f"the dense modality needs dense_field: a float_seq field of {dataset.item_file_path}")
        encoders["dense"] = vector_encoder(model, dataset, dense_field, hidden)
    return encoders


def training_ratings(config, dataset, who):
    """(rating field, the training ratings as floats); a clear error when the dataset has none."""
    field = config["RATING_FIELD"]
    if not field or field not in dataset.field2type:
        raise ValueError(f"{who} needs ratings: dataset {config['dataset']} has no rating field loaded "
                         f"(RATING_FIELD: {field})")
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
    return torch.cat([encode(rows[i:i + batch_size]) for i in range(0, n, batch_size)])
