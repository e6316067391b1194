"""BiasMF: biased matrix factorization for rating prediction (not in RecBole).

Koren, Bell & Volinsky (2009), "Matrix factorization techniques for recommender systems",
IEEE Computer 42(8), eq. (3)-(5):

    r_hat(u, i) = mu + b_u + b_i + p_u . q_i

``mu`` is the mean rating of the training interactions (a buffer: fixed, saved in
checkpoints); b_u, b_i start at 0; p_u, q_i (``embedding_size`` factors) ~ N(0, init_std).
Loss, per training rating (eq. 5 divided by the number of ratings):

    (r - r_hat)^2 + reg_weight * (b_u^2 + b_i^2 + |p_u|^2 + |q_i|^2)

Variants (properties/model/BiasMF.yaml):
  embedding_size > 0, biases True    "mf":   the full model above
  embedding_size 0,   biases True    "bias": mu + b_u + b_i (user + item biases)
  embedding_size 0,   biases False   "mean": mu alone (sanity baseline; nothing is learned)
  embedding_size > 0, biases False   mu + p_u . q_i
``clip_rating`` clips predictions to the training ratings' [min, max].

Trains on the observed ratings only (``train_neg_sample_args: ~``). ``predict`` returns
ratings (protocols ``rating`` / ``loo-rating``, RMSE/MAE); ``full_sort_predict`` returns
the predicted rating of every item, so the model also runs under the ranking protocols.
"""

from logging import getLogger

import torch
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.utils import InputType

from recbole_hybrid.model.capabilities import Capabilities


class BiasMF(GeneralRecommender):
    input_type = InputType.POINTWISE
    capabilities = Capabilities(rates=True)

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.RATING = config["RATING_FIELD"]
        check_ratings(config, dataset, self.RATING)
        ratings = dataset.inter_feat[self.RATING].float()
        self.register_buffer("mu", ratings.mean().reshape(()))
        self.register_buffer("rating_range", torch.stack([ratings.min(), ratings.max()]))
        self.embedding_size = int(config["embedding_size"])
        self.use_biases = bool(config["biases"])
        self.reg_weight = float(config["reg_weight"])
        self.clip_rating = bool(config["clip_rating"])
        if self.use_biases:
            self.user_bias = torch.nn.Embedding(self.n_users, 1)
            self.item_bias = torch.nn.Embedding(self.n_items, 1)
            torch.nn.init.zeros_(self.user_bias.weight)
            torch.nn.init.zeros_(self.item_bias.weight)
        if self.embedding_size > 0:
            self.user_factors = torch.nn.Embedding(self.n_users, self.embedding_size)
            self.item_factors = torch.nn.Embedding(self.n_items, self.embedding_size)
            torch.nn.init.normal_(self.user_factors.weight, std=config["init_std"])
            torch.nn.init.normal_(self.item_factors.weight, std=config["init_std"])
        if not self.use_biases and self.embedding_size == 0:
            self.dummy_param = torch.nn.Parameter(torch.zeros(1))  # RecBole's trainer needs one
            # nothing to learn: one epoch, as RecBole's TraditionalTrainer (a constant validation
            # score never triggers RecBole's early stopping, which resets on ties)
            config["epochs"] = 1

    @property
    def variant(self):
        if self.embedding_size > 0:
            return "mf" if self.use_biases else "mf-no-bias"
        return "bias" if self.use_biases else "mean"

    def _terms(self, users, items):
        """Unclipped prediction and the squared L2 norm of each pair's parameters."""
        pred = self.mu.expand(len(users)).clone()
        norm = torch.zeros_like(pred)
        if self.use_biases:
            b_u, b_i = self.user_bias(users).squeeze(-1), self.item_bias(items).squeeze(-1)
            pred = pred + b_u + b_i
            norm = norm + b_u**2 + b_i**2
        if self.embedding_size > 0:
            p_u, q_i = self.user_factors(users), self.item_factors(items)
            pred = pred + (p_u * q_i).sum(-1)
            norm = norm + (p_u**2).sum(-1) + (q_i**2).sum(-1)
        return pred, norm

    def _clip(self, ratings):
        if self.clip_rating:
            return ratings.clamp(self.rating_range[0], self.rating_range[1])
        return ratings

    def calculate_loss(self, interaction):
        users, items = interaction[self.USER_ID], interaction[self.ITEM_ID]
        target = interaction[self.RATING].float()
        pred, norm = self._terms(users, items)
        loss = ((target - pred) ** 2 + self.reg_weight * norm).mean()
        if hasattr(self, "dummy_param"):
            loss = loss + 0.0 * self.dummy_param.sum()
        return loss

    def predict(self, interaction):
        pred, _ = self._terms(interaction[self.USER_ID], interaction[self.ITEM_ID])
        return self._clip(pred)

    def full_sort_predict(self, interaction):
        users = interaction[self.USER_ID]
        scores = self.mu.expand(len(users), self.n_items).clone()
        if self.use_biases:
            scores = scores + self.user_bias(users) + self.item_bias.weight.view(1, -1)
        if self.embedding_size > 0:
            scores = scores + self.user_factors(users) @ self.item_factors.weight.t()
        return self._clip(scores).view(-1)


def check_ratings(config, dataset, field):
    """BiasMF regresses ratings: the rating field must be configured, loaded and, for
    RMSE/MAE, be the field the evaluator compares predictions with."""
    name = config["dataset"]
    if field is None:
        raise ValueError(
            f"BiasMF needs ratings: dataset [{name}] has no rating field (RATING_FIELD is None); "
            "set RATING_FIELD to the .inter column holding the ratings"
        )
    if field not in dataset.inter_feat.columns:
        raise ValueError(
            f"BiasMF needs ratings: dataset [{name}] has no loaded rating field [{field}] "
            f"(RATING_FIELD={field}; loaded .inter columns: {list(dataset.inter_feat.columns)}; "
            "check load_col)"
        )
    normalized = config["normalize_field"] or []
    if config["normalize_all"] or field in normalized:
        getLogger().warning(
            f"BiasMF: rating field [{field}] of [{name}] is min-max normalised to [0, 1] "
            "(normalize_all / normalize_field): RMSE / MAE are on that scale, not the rating scale"
        )
    mode = config["eval_args"]["mode"]
    labeled = "labeled" in (mode.values() if isinstance(mode, dict) else [mode])
    if labeled and config["LABEL_FIELD"] != field:
        raise ValueError(
            f"BiasMF: labeled evaluation compares predictions with LABEL_FIELD "
            f"[{config['LABEL_FIELD']}], not the rating field [{field}]: set LABEL_FIELD: {field}"
        )
