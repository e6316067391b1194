"""Recommendations from a checkpoint saved by the runner, without ``recbole.quick_start``
(which imports ray).

    rec = Recommender.from_checkpoint("saved/MDCVAE-Nov-24-2026_05-37-09.pth")
    rec.recommend(users=["196", "186"], k=10)                   # users of the model
    rec.recommend(history=["50", "172", "181"], k=10)           # a new user (fold-in)
    rec.recommend(users=["196"], new_items="new.item", k=10)    # + new items, from their content

``recommend`` returns a DataFrame (user, rank, item, score, new_item) in external ids. Items a
user has seen (the history the model scores her from: her training interactions, or the
fold-in part of protocol ``strong``; for a new user, the history given) are left out unless
``exclude_seen=False``. Users of the model are scored by ``full_sort_predict``, as in
evaluation. New users and new items go through the model's ``score_users`` (the one interface
of ``ContentRecommender``): a model that implements it (and sets ``cold_start`` for new items)
is served here with nothing to add; a model reading several ``.item`` fields (DEAMER, LRMM:
``new_item_fields``) gets them as {field: values}. RecBole's models that fold in users from
their history (autoencoders, EASE, ItemKNN) are served through ``install_fold_in`` on a copy of
the model.

Command line (``--help`` for all options):
    python -m recbole_hybrid.recommend --checkpoint saved/X.pth --user 196 186 --k 20
    python -m recbole_hybrid.recommend --checkpoint saved/X.pth --history 50 172 \
        --new-items new.item --output top.csv
"""

from recbole_hybrid.recommend.abilities import (
    COLD_START,
    FOLD_IN,
    CapabilityError,
    capabilities,
    implements_score_users,
    model_classes,
    models_with,
    require,
)
from recbole_hybrid.recommend.cli import main
from recbole_hybrid.recommend.loading import load_data_and_model, scoring_history
from recbole_hybrid.recommend.new_items import NewItems, read_new_items
from recbole_hybrid.recommend.recommender import Recommender, UnknownIdError

__all__ = [
    "COLD_START",
    "FOLD_IN",
    "CapabilityError",
    "NewItems",
    "Recommender",
    "UnknownIdError",
    "capabilities",
    "implements_score_users",
    "load_data_and_model",
    "main",
    "model_classes",
    "models_with",
    "read_new_items",
    "require",
    "scoring_history",
]
