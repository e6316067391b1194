"""DEAMER: deep exposure-aware multimodal content-based recommender.

Hong et al., "DEAMER: A Deep Exposure-Aware Multimodal Content-Based Recommendation
System" (DASFAA 2020), ../shared/papers/DEAMER.md, section 3:
  h_u = LSTM(X_u), h_{w,v} = LSTM(w_v), h_{m,v} = LSTM(m_v)      (eqs. 1-3: text encoders)
  h_{g,v} = ReLU(W_G Q)                                           (eq. 6: visual / dense)
  z_v = ReLU(W_z concat(h_{w,v}, h_{m,v}, h_{g,v}))               (eqs. 7-8)
  y_uv = sigma(W_L (h_u * z_v))                                   (eq. 9: exposure)
  r_uv = sigma(W_R concat(e_u, y_uv, e_v)), scaled to the rating range   (eq. 10: rating)
  L = sum BCE(y_uv) + lambda (r_uv - r)^2, 5 sampled negatives per positive  (eq. 11)

Inputs (recbole_hybrid/data/reviews.py; built from the training split only): X_u = the
user's training reviews, w_v = the item's training reviews, each a sequence of Doc2Vec review
vectors (``text_unit: review``, the default on CPU) or of word vectors (``text_unit: word``);
m_v = the item's metadata words (a ``.item`` token_seq) or a metadata vector (float_seq);
the visual modality is any dense ``.item`` vector (``dense_field``: an MLP, eq. 6 on given
features; the paper's CNN over a raw image is not built: no images exist here). On a dataset
without reviews (lfm2k) X_u is the sequence of the content vectors of the user's training
items (``user_document: history``) and w_v is absent. With ``own_review: exclude`` a training
pair's own review is left out of X_u and w_v while that pair is scored (a test pair's review is
never in them: training then sees documents as the test does).

``modalities`` (Fig. 3a): D (reviews), M (metadata), I (image / dense), R (ratings: the rating
module and its loss). ``architecture: parallel`` is the paper's Fig. 3b alternative (rating from
the shared representation h_u * z_v instead of the exposure). A missing modality (an item
without training reviews, metadata or vector) is replaced by a learned "missing" vector.

Rating module details the paper leaves open: W_R's bias starts where sigma gives the training
mean rating (then the first epochs refine it instead of climbing from the middle of the range;
chosen on validation, see benchmarks/results/deamer.md); W_R's user and item terms w_u.e_u,
w_v.e_v are the user and item biases, and ``bias_reg`` puts an L2 on them (``reg_weight`` alone
cannot: e_u may shrink while W_R grows).

``predict`` serves both tasks: the exposure probability for ranking protocols, the rating
for protocols scored by RMSE / MAE (``predict_task: auto``).

Users and items it was not trained on (``score_users``, recbole_hybrid/recommend/): a new item
has no training reviews (the "missing" vector) and is encoded from its metadata / dense vector;
a new user's X_u is her given history's item vectors (``user_document: history``), or missing
(reviews: she has none). The rating module has no e_u / e_v for them: zeros.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from recbole.utils import InputType

from recbole_hybrid.model.abstract_recommender import ContentRecommender
from recbole_hybrid.model.capabilities import Capabilities
from recbole_hybrid.model.layers import SequenceEncoder, pair_keys, sample_negatives
from recbole_hybrid.model.modalities import (
    content_encoders,
    encode_all,
    item_fields,
    new_item_count,
    new_item_encodings,
    new_user_encodings,
    own_reviews,
    training_ratings,
)

MODALITIES = ("D", "M", "I", "R")
RATING_METRICS = ("rmse", "mae")


class DEAMER(ContentRecommender):
    input_type = InputType.POINTWISE
    capabilities = Capabilities(
        rates=True, scores_new_items=True
    )  # exposure ranks, rating module rates
    new_users = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.modalities = set(config["modalities"])
        unknown = self.modalities - set(MODALITIES)
        if unknown or "D" not in self.modalities:
            raise ValueError(
                f"modalities {sorted(self.modalities)}: D is required, the others are {MODALITIES}"
            )
        if config["architecture"] not in ("cascade", "parallel"):
            raise ValueError(f"architecture [{config['architecture']}] must be cascade or parallel")
        self.parallel = config["architecture"] == "parallel"
        self.lambda_rating = config["rating_weight"]
        self.n_neg = config["neg_samples"]
        self.reg_weight = config["reg_weight"]
        self.predict_rating = self._predicts_rating(config)
        hidden = config["hidden_size"]

        self.user_text, item_parts = self._build_encoders(config, dataset, hidden)
        self.item_parts = nn.ModuleDict(item_parts)
        self.missing = nn.ParameterDict(
            {name: nn.Parameter(torch.zeros(hidden)) for name in ["user", *item_parts]}
        )
        self.dropout = nn.Dropout(config["dropout_prob"])
        self.item_fuse = nn.Linear(hidden * len(item_parts), hidden)  # W_z
        self.exposure_out = nn.Linear(hidden, 1)  # W_L
        if "R" in self.modalities:
            self._build_rating_module(config, dataset, hidden)
        elif self.predict_rating:
            raise ValueError(
                "DEAMER without the R modality predicts no ratings: add R to modalities "
                "or use a ranking protocol"
            )
        train = dataset.inter_feat
        keys = pair_keys(train[self.USER_ID], train[self.ITEM_ID], self.n_items)
        self.register_buffer("positive_keys", torch.sort(keys).values, persistent=False)

    # ---- construction
    @staticmethod
    def _predicts_rating(config):
        task = config["predict_task"]
        if task == "auto":
            return config["valid_metric"].split("@")[0].lower() in RATING_METRICS
        if task not in ("exposure", "rating"):
            raise ValueError(f"predict_task [{task}] must be auto, exposure or rating")
        return task == "rating"

    def _build_encoders(self, config, dataset, hidden):
        encoders = content_encoders(
            self,
            config,
            dataset,
            hidden,
            SequenceEncoder,
            meta_field=config["meta_field"] if "M" in self.modalities else None,
            dense_field=(config["dense_field"] or "") if "I" in self.modalities else None,
        )
        self.own_review = own_reviews(config, encoders)
        parts = {
            name: encoders[key]
            for name, key in (("reviews", "item"), ("meta", "meta"), ("dense", "dense"))
            if key in encoders
        }
        if not parts:
            raise ValueError("DEAMER needs at least one item modality (item reviews, M or I)")
        return encoders["user"], parts

    def _build_rating_module(self, config, dataset, hidden):
        self.rating_field, ratings = training_ratings(config, dataset, "DEAMER's R modality")
        self.register_buffer("rating_range", torch.stack([ratings.min(), ratings.max()]))
        emb = config["embedding_size"]
        self.user_embedding = nn.Embedding(self.n_users, emb)  # e_u
        self.item_embedding = nn.Embedding(self.n_items, emb)  # e_v
        nn.init.normal_(self.user_embedding.weight, std=0.01)
        nn.init.normal_(self.item_embedding.weight, std=0.01)
        self.rating_out = nn.Linear(2 * emb + (hidden if self.parallel else 1), 1)  # W_R
        # start at the training mean: sigma(b) scaled to the range equals it
        mean = ((ratings.mean() - ratings.min()) / (ratings.max() - ratings.min())).clamp(
            0.01, 0.99
        )
        nn.init.constant_(self.rating_out.bias, float(torch.logit(mean)))
        self.bias_reg = config["bias_reg"]

    # ---- the network
    def _present(self, encoder, rows, name, exclude=None):
        h = encoder(rows, exclude)
        return torch.where(encoder.mask(rows, exclude).unsqueeze(1), h, self.missing[name])

    def user_vectors(self, users, exclude=None):
        return self.dropout(self._present(self.user_text, users, "user", exclude))  # h_u

    def item_vectors(self, items, exclude=None):
        return self._fuse_items(
            [self._present(enc, items, name, exclude) for name, enc in self.item_parts.items()]
        )

    def _fuse_items(self, parts):
        return F.relu(self.item_fuse(self.dropout(torch.cat(parts, 1))))  # z_v (eqs. 7-8)

    def _encodings(self):
        """(h_u of every user, z_v of every item), computed once until the weights change
        (evaluation)."""
        if self._cache is None:
            self._cache = (
                encode_all(self.user_vectors, self.n_users, self.device),
                encode_all(self.item_vectors, self.n_items, self.device),
            )
        return self._cache

    def _pairs(self, users, items, own=None):
        """h_u * z_v of each pair, encoding each distinct user and item once (in evaluation,
        every user and item once until the weights change). ``own``: per pair, its training
        review number (0: none), left out of that pair's user and item documents."""
        if not self.training:
            h_u, z_v = self._encodings()
            return h_u[users] * z_v[items]
        uniq_u, inv_u = torch.unique(users, return_inverse=True)
        uniq_i, inv_i = torch.unique(items, return_inverse=True)
        h_u, z_v = self.user_vectors(uniq_u)[inv_u], self.item_vectors(uniq_i)[inv_i]
        if own is not None and bool((own > 0).any()):
            pos = (own > 0).nonzero().squeeze(1)
            h_u = h_u.index_put((pos,), self.user_vectors(users[pos], own[pos]))
            z_v = z_v.index_put((pos,), self.item_vectors(items[pos], own[pos]))
        return h_u * z_v

    def forward(self, users, items, own=None):
        """(exposure logit, rating or None) of each (user, item) pair."""
        shared = self._pairs(users, items, own)
        logit = self.exposure_out(shared).squeeze(-1)  # eq. 9 before the sigmoid
        if "R" not in self.modalities:
            return logit, None
        middle = shared if self.parallel else torch.sigmoid(logit).unsqueeze(1)
        x = torch.cat([self.user_embedding(users), middle, self.item_embedding(items)], 1)
        low, high = self.rating_range
        return logit, low + (high - low) * torch.sigmoid(self.rating_out(x).squeeze(-1))  # eq. 10

    def _rating_biases(self, e_u, e_v):
        """W_R's user and item terms, w_u . e_u and w_v . e_v: the user and item biases of
        eq. 10."""
        emb, w = e_u.shape[1], self.rating_out.weight[0]
        return e_u @ w[:emb], e_v @ w[-emb:]

    # ---- RecBole interface
    def calculate_loss(self, interaction):
        users, items = interaction[self.USER_ID], interaction[self.ITEM_ID]
        negatives = sample_negatives(users, self.n_neg, self.positive_keys, self.n_items)
        all_users = torch.cat([users, users.repeat_interleave(self.n_neg)])
        all_items = torch.cat([items, negatives.reshape(-1)])
        own = None
        if self.own_review is not None:  # negatives have no review of their own
            own = torch.cat(
                [self.own_review(users, items), torch.zeros_like(negatives.reshape(-1))]
            )
        logit, rating = self.forward(all_users, all_items, own)
        labels = torch.zeros_like(logit)
        labels[: len(users)] = 1.0
        # eq. 11, per positive: BCE of it and its negatives + lambda * squared rating error
        loss = F.binary_cross_entropy_with_logits(logit, labels, reduction="sum") / len(users)
        if rating is not None:
            error = rating[: len(users)] - interaction[self.rating_field].float()
            loss = loss + self.lambda_rating * error.pow(2).mean()
            e_u, e_v = self.user_embedding(users), self.item_embedding(items)
            loss = loss + self.reg_weight * (e_u.pow(2).sum(1) + e_v.pow(2).sum(1)).mean()
            if self.bias_reg:  # L2 on the biases themselves: e_u alone can shrink while W_R grows
                b_u, b_v = self._rating_biases(e_u, e_v)
                loss = loss + self.bias_reg * (b_u.pow(2) + b_v.pow(2)).mean()
        return loss

    def predict(self, interaction):
        logit, rating = self.forward(interaction[self.USER_ID], interaction[self.ITEM_ID])
        return rating if self.predict_rating else torch.sigmoid(logit)

    def full_sort_predict(self, interaction):
        users = interaction[self.USER_ID]
        items = torch.arange(self.n_items, device=users.device)
        pairs_u = users.repeat_interleave(self.n_items)
        pairs_i = items.repeat(len(users))
        return self.predict({self.USER_ID: pairs_u, self.ITEM_ID: pairs_i})

    # ---- users and items it was not trained on (recbole_hybrid/recommend/)
    def new_item_fields(self):
        return item_fields(self.item_parts.values())

    @torch.no_grad()
    def score_users(self, history, new_content=None, users=None):
        """``ContentRecommender.score_users`` (in eval mode): ``predict``'s score, the exposure (the
        rating with ``predict_rating``). Known ``users``: their own h_u, e_u; new users: h_u from
        their history (``user_document: history``; with reviews: an error, she has none), e_u = 0.
        New items: the missing-reviews vector, their metadata / dense vector, e_v = 0."""
        h_all, z_all = self._encodings()
        n_new = new_item_count(new_content)
        z_v = torch.cat([z_all, self._new_item_vectors(new_content, n_new)])
        if users is None:
            if not self.user_text.reads_history:  # no reviews: only the untrained missing vector
                raise ValueError(
                    "DEAMER with user_document: reviews cannot score new users: a new user has "
                    "no reviews, so every item would tie; train with user_document: history "
                    "(the user's items' content vectors) to serve new users"
                )
            e, present = new_user_encodings(self.user_text, history, self.n_items, self.device)
            h_u = self.dropout(torch.where(present.unsqueeze(1), e, self.missing["user"]))
        else:
            users = torch.as_tensor(users, device=self.device)
            h_u = h_all[users]
        return self._score_all_pairs(h_u, z_v, users, n_new)

    def _new_item_vectors(self, new_content, n_new):
        """z_v of the new items (their absent modalities: the learned missing vectors)."""
        parts = []
        for name, enc in self.item_parts.items():
            e, present = new_item_encodings(enc, new_content, n_new, self.device)
            parts.append(torch.where(present.unsqueeze(1), e, self.missing[name]))
        return self._fuse_items(parts)

    def _score_all_pairs(self, h_u, z_v, users, n_new):
        """``predict`` [B, N] of every (h_u, z_v) pair, through W_L and W_R split by input (no
        [B, N, d])."""
        logit = (h_u * self.exposure_out.weight[0]) @ z_v.T + self.exposure_out.bias  # eq. 9
        if not self.predict_rating:
            return torch.sigmoid(logit)
        emb, w = self.user_embedding.embedding_dim, self.rating_out.weight[0]
        e_u = self.user_embedding(users) if users is not None else h_u.new_zeros(len(h_u), emb)
        e_v = torch.cat([self.item_embedding.weight, z_v.new_zeros(n_new, emb)])
        middle = (h_u * w[emb:-emb]) @ z_v.T if self.parallel else torch.sigmoid(logit) * w[emb]
        b_u, b_v = self._rating_biases(e_u, e_v)
        rating = b_u.unsqueeze(1) + middle + b_v.unsqueeze(0) + self.rating_out.bias
        low, high = self.rating_range
        return low + (high - low) * torch.sigmoid(rating)  # eq. 10
