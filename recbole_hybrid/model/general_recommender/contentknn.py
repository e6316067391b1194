"""ContentKNN: content-only baseline (not in RecBole).

score(u, j) = cos(p_u, x_j), where x_j is item j's weighted content vector (TF-IDF by
default: tf = the content weights, idf_w = log(N / df_w) over the N items with content; the
other weightings of model/term_weighting.py: sublinear or binary tf, smoothed idf, min / max
document frequency, BM25) and p_u = sum of x_i over u's training items. No training; scores
cold items as any other. A dense content vector (text / audio embedding) is used as it is, at
unit length (term weights mean nothing there). ``item_reviews: True`` adds each item's
training review words to its content words (``content_field``, token_seq), one vocabulary.
"""

import numpy as np
import scipy.sparse as sp
import torch
from recbole.utils import InputType, ModelType

from recbole_hybrid.data.reviews import item_token_words, item_word_counts
from recbole_hybrid.model.abstract_recommender import ContentRecommender, as_csr
from recbole_hybrid.model.capabilities import Capabilities
from recbole_hybrid.model.layers import l2_normalize_rows
from recbole_hybrid.model.term_weighting import TermWeighting


class ContentKNN(ContentRecommender):
    input_type = InputType.POINTWISE
    type = ModelType.TRADITIONAL
    capabilities = Capabilities(
        folds_in_users=True, scores_new_items=True
    )  # profiles; items by content

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.dummy_param = torch.nn.Parameter(torch.zeros(1))  # RecBole's trainer needs one
        self.cold_start = not config["item_reviews"]  # new items have no training reviews
        self.item_vectors = sp.csr_matrix(self._item_vectors(config, dataset))
        self.interaction_matrix = dataset.inter_matrix(form="csr").astype(np.float32)
        self.other_parameter_name = ["item_vectors", "interaction_matrix"]

    def _item_vectors(self, config, dataset):
        # the word weights are rebuilt from the dataset with the model: not in the state_dict
        self.weighting = TermWeighting.from_config(config)
        if config["item_reviews"]:
            field = config["content_field"] or dataset.content_names[0]
            counts = item_word_counts(
                dataset, config["review_field"], item_token_words(dataset, field)
            )
            return self.weighting.fit(counts).transform(counts)
        content = self.item_content(dataset, config["content_field"])
        if not content.is_sparse:
            self.weighting = None
            return l2_normalize_rows(content.to_scipy())
        return self.weighting.fit(content.to_scipy()).transform(content.to_scipy())

    @property
    def content_matrix(self):
        """The items' model input: their TF-IDF (or unit-length) content rows."""
        return self.item_vectors

    def new_item_vectors(self, content):
        """Model input of new items' raw content rows, weighted with the training word weights."""
        rows = self.new_content_rows(content)
        return self.weighting.transform(rows) if self.weighting else l2_normalize_rows(rows)

    def fold_in(self, history_dataset):
        """Score users from the interactions of ``history_dataset`` (new users' fold-in)."""
        self.interaction_matrix = history_dataset.inter_matrix(form="csr").astype(np.float32)

    def user_profiles(self, history):
        """L2-normalised content profiles of users given their history rows (CSR)."""
        return l2_normalize_rows(history @ self.item_vectors)

    def calculate_loss(self, interaction):
        return torch.nn.Parameter(torch.zeros(1))

    def predict(self, interaction):
        users = interaction[self.USER_ID].cpu().numpy()
        items = interaction[self.ITEM_ID].cpu().numpy()
        profiles = self.user_profiles(self.interaction_matrix[users])
        scores = np.asarray(profiles.multiply(self.item_vectors[items]).sum(axis=1)).ravel()
        return torch.from_numpy(scores.astype(np.float32)).to(self.device)

    def scores(self, history, item_vectors):
        """cos(p_u, x_j) [B, n] of users with history rows ``history`` (CSR) and items
        ``item_vectors``."""
        scores = (self.user_profiles(history) @ item_vectors.T).toarray()
        return torch.from_numpy(scores.astype(np.float32)).to(self.device)

    def full_sort_predict(self, interaction):
        users = interaction[self.USER_ID].cpu().numpy()
        return self.scores(self.interaction_matrix[users], self.item_vectors).view(-1)

    def score_users(self, history, new_content=None, users=None):
        """``ContentRecommender.score_users``: profiles from the history rows, new items from
        content."""
        if new_content is not None and not self.cold_start:
            raise ValueError(
                "ContentKNN with item_reviews: True has no cold-start path "
                "(new items have no reviews)"
            )
        items = self.item_vectors
        if new_content is not None:
            items = sp.vstack([items, self.new_item_vectors(new_content)]).tocsr()
        return self.scores(as_csr(history), items)
