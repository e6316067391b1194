"""Changes to the training split only (validation and test are untouched), for every model
(``data_preparation``; yaml keys, default off):

  max_item_train_ratings: N   each item keeps at most N of its training ratings, a seeded choice
                              (``seed``); the LRMM paper's Fig. 4 (section 3.5: "reducing the number
                              of ... ratings (for NMF and SVD++) of each item in the training set").
                              Review documents are built from what is left. ~: all
  rating_rescale: True        the training labels (``LABEL_FIELD``) min-max scaled to [0, 1] for
                              models trained with BCE on a label in [0, 1] (RecBole's NeuMF,
                              DeepFM); ``quick_start.prepare`` maps their predictions back
                              (low + (high - low) * p), so RecBole's evaluator computes RMSE / MAE
                              on the rating scale against the unscaled validation / test labels.
"""

import numpy as np

from recbole_hybrid.data.protocols import rank_within_user, subset


def check_supported(config):
    """The options need our data preparation (``HybridDataset``): a clear error elsewhere."""
    for key in ("max_item_train_ratings", "rating_rescale"):
        if config[key] not in (None, False):
            raise ValueError(
                f"{key} is applied by recbole_hybrid's data preparation, which model "
                f"{config['model']} ({config['MODEL_TYPE']}) does not use"
            )


def prepare_training_split(config, train):
    """The training split after ``max_item_train_ratings`` and ``rating_rescale``."""
    return rescale_labels(config, cap_item_ratings(config, train))


def check_cap(key, cap):
    """A per-item cap from yaml (``max_item_train_ratings``, ``max_item_reviews``): ~ or a whole
    number >= 0."""
    if cap is not None and (int(cap) != cap or cap < 0):
        raise ValueError(f"{key} {cap}: a number >= 0 (or ~ for all)")
    return cap


def cap_item_ratings(config, train):
    cap = check_cap("max_item_train_ratings", config["max_item_train_ratings"])
    if cap is None:
        return train
    items = train.inter_feat[train.iid_field].numpy()
    keep = rank_within_user(items, np.random.default_rng(config["seed"])) < cap
    if not keep.any():
        raise ValueError(
            f"max_item_train_ratings {cap} leaves no training interaction: model "
            f"{config['model']} has nothing to train on (the LRMM paper, section 3.5: NMF and "
            "SVD++ cannot be trained without ratings); cap the reviews instead (max_item_reviews)"
        )
    return subset(train, keep)


def rescale_labels(config, train):
    if not config["rating_rescale"]:
        return train
    label = config["LABEL_FIELD"]
    if label not in train.field2type:
        raise ValueError(f"rating_rescale: the label field [{label}] (LABEL_FIELD) was not loaded")
    values = train.inter_feat[label].float()
    low, high = float(values.min()), float(values.max())
    if not high > low:
        raise ValueError(f"rating_rescale: the training labels [{label}] are constant ({low})")
    train.inter_feat[label] = (values - low) / (high - low)
    train.label_range = (low, high)
    return train
