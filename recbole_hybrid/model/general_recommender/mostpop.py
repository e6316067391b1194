"""MostPop: items ranked by their number of training interactions.

RecBole 1.2.1's ``Pop`` counts an item at most once per training batch and counts the
sampled negatives too (on Amazon MI its largest count is about 8, the true one 118);
this one counts the training interactions themselves, once.
"""

import numpy as np
import torch
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.utils import InputType, ModelType

from recbole_hybrid.model.capabilities import Capabilities


class MostPop(GeneralRecommender):
    input_type = InputType.POINTWISE
    type = ModelType.TRADITIONAL
    capabilities = Capabilities(folds_in_users=True)  # counts serve any user

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.dummy_param = torch.nn.Parameter(torch.zeros(1))  # RecBole's trainer needs one
        items = dataset.inter_feat[dataset.iid_field].numpy()
        counts = np.bincount(items, minlength=self.n_items).astype(np.float32)
        self.register_buffer("item_count", torch.from_numpy(counts))

    def fold_in(self, history_dataset):
        """Popularity needs no user history: new users get the same ranking."""

    def score_users(self, history, new_content=None, users=None):
        """Scores [B, n_items] of any B users (``ContentRecommender.score_users``' interface):
        the training counts; new items have none, so there is no cold-start path."""
        if new_content is not None:
            raise ValueError(
                "MostPop has no cold-start path: new items have no training interactions"
            )
        return self.item_count.repeat(history.shape[0], 1)

    def calculate_loss(self, interaction):
        return torch.nn.Parameter(torch.zeros(1))

    def predict(self, interaction):
        return self.item_count[interaction[self.ITEM_ID]]

    def full_sort_predict(self, interaction):
        n_users = len(interaction[self.USER_ID])
        return self.item_count.repeat(n_users)
