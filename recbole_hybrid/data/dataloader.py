"""Dataloaders RecBole lacks: user rows of training users only, and full-ranking
evaluation restricted to a candidate set of items."""

from logging import getLogger

import numpy as np
import torch
from recbole.data.dataloader import AbstractDataLoader, FullSortEvalDataLoader, UserDataLoader
from recbole.data.interaction import Interaction


class TrainUserDataLoader(UserDataLoader):
    """User rows (autoencoders) of the users that have training interactions.

    RecBole's UserDataLoader yields every user id, so users held out by the protocol
    (strong generalization) would be trained on as empty rows.
    """

    def __init__(self, config, dataset, sampler, shuffle=True):
        self.logger = getLogger()
        self.uid_field = dataset.uid_field
        users = torch.unique(dataset.inter_feat[self.uid_field])
        self.user_list = Interaction({self.uid_field: users})
        self.sample_size = len(self.user_list)
        AbstractDataLoader.__init__(self, config, dataset, sampler, shuffle=True)


class CandidateFullSortEvalDataLoader(FullSortEvalDataLoader):
    """Full ranking among candidate items only: ``excluded_items`` are masked for every
    user like her history (cold items ranked among cold items, normal among normal)."""

    def __init__(self, config, dataset, sampler, shuffle=False, excluded_items=None):
        super().__init__(config, dataset, sampler, shuffle=shuffle)
        self.excluded_items = torch.as_tensor(np.asarray(excluded_items, dtype=np.int64))

    def collate_fn(self, index):
        user_df, (history_u, history_i), positive_u, positive_i = super().collate_fn(index)
        n_users = len(user_df)
        extra_u = torch.arange(n_users).repeat_interleave(len(self.excluded_items))
        extra_i = self.excluded_items.repeat(n_users)
        history = (torch.cat([history_u, extra_u]), torch.cat([history_i, extra_i]))
        return user_df, history, positive_u, positive_i
