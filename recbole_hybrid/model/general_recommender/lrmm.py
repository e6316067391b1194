"""LRMM: learning to recommend with missing modalities (rating regression).

Wang, Niepert & Li, "LRMM: Learning to Recommend with Missing Modalities" (EMNLP 2018),
../shared/papers/LRMM.md, section 2. Modalities g (``modalities``, the dataset's yaml keys):
  U  the user's training reviews, D^u (eq. 1)          O  the item's training reviews, D^o (eq. 2)
  M  the item's metadata (``meta_field``): its words D^m, or a float_seq vector
  V  the item's dense vector (``dense_field``; the paper's 4096-d CNN features, eq. 10), if any
Documents come from the training split only (recbole_hybrid/data/reviews.py): with ``text_unit:
word`` (the paper's) word sequences of at most L = ``max_doc_units`` / ``max_meta_words`` words
(the most recent), as Doc2Vec word vectors; with ``text_unit: review`` (the default, chosen on
validation, see benchmarks/results/lrmm.md) U and O are sequences of at most ``max_doc_units``
Doc2Vec review vectors (L = 100 words hold about one review here); with ``own_review: exclude``
a training pair's own review is left out of its U and O documents while it is scored (the test
pair's review is never in them).

  e^g = W mean_t(x_t) + b     ``text_encoder: mean``: average pooling of the word vectors (eq. 9)
      = h_T of an LSTM         ``text_encoder: lstm`` (eqs. 5-8; the last state, not eq. 9's mean)
  e^v = ReLU(W x_v)            eq. 10 on the given features; every e^g has size d (``hidden_size``),
                               then dropout (``dropout_prob``, "after the recurrent layer")
  m-drop (eqs. 13-15)          in training each available modality of a sample is zeroed with
                               probability p_m (``mdrop_prob``), never all of a sample's (below)
  m-auto (eqs. 17-18)          per modality g: e_hid^g = sigm(W_vh^g x~ + b),
                               e_recon^g = W_hv^g e_hid^g + b
  shared layer (eq. 11)        s^ = w^T ReLU(W_s [e~^u, e~^o, e~^m, e~^v] + b_s) + b
  L = alpha MSE(s^, s) + beta sum_g (||e_recon^g - e^g||^2 + lambda_rho H^g)   (eqs. 19-22)

Choices where the paper is silent or not applicable here:
  * m-auto's input x~ is the concatenation of all the sample's modality embeddings, the dropped
    / missing ones zeroed, plus the availability bits: each modality's autoencoder reconstructs its
    embedding from what is there (the bimodal autoencoder of Ngiam et al. 2011, which the paper
    cites). An autoencoder fed its own modality alone would see zeros when that modality is
    dropped and could not impute it from the others (Fig. 3c-d, section 2.3's inter-modal claim).
  * e~^g, the shared layer's input, is e^g where the modality is available and e_recon^g where
    it is missing: dropped by m-drop, absent from the data (no training review, no metadata row,
    no vector) or masked at inference (``missing``). A missing modality never enters as zeros.
  * the decoder output is linear (the paper's eq. 18 has a sigmoid, for embeddings in (0, 1);
    ours are not bounded that way), and eq. 18's 1/T sum over words is the encoder's business.
  * m-auto reads the embeddings detached (stop-gradient), as input and as reconstruction target:
    the encoders are shaped by the rating loss alone; m-auto learns from the reconstruction loss
    and from the rating loss through the embeddings it imputes. A target the reconstruction loss
    could move would let it collapse the embeddings (constants are perfectly imputable); with the
    gradient flowing back through m-auto's input, the reconstruction loss kept growing the
    embeddings on amazon-mi while the rating fit stalled. Targets exist only where the modality
    is available; all of them count, dropped or not (the full embedding is reconstructed).
  * H^g (eq. 20) is the KL sparsity penalty of the autoencoder's sigmoid units, rho_hat their mean
    activation over the batch; rho = ``sparsity_target``, lambda_rho = ``sparsity_weight``.
  * alpha, beta (eq. 22, "learnable"): a raw learnable weight would fall to 0, so they follow the
    uncertainty weighting of Kendall, Gal & Cipolla (CVPR 2018): alpha = exp(-s_1),
    beta = exp(-s_2), L = exp(-s_1) L_reg + s_1 + exp(-s_2) sum_g L_recon^g + s_2 with learnable
    s (init 0). At the optimum alpha = 1 / L_reg, beta = 1 / sum_g L_recon^g. The L2 term of
    eq. 19 is RecBole's ``weight_decay``.
  * m-drop: the paper's eqs. 13-15 leave the per-modality rate unclear; here ``mdrop_prob`` is
    exactly each modality's drop rate. A sample with n available modalities draws independent
    drops with probability q_n; if all n are drawn, one of them, picked uniformly, is kept. Its
    rate is q_n - q_n^n / n, q_n solved so that it equals p_m (at most (n-1)/n: one always stays);
    a modality that is a sample's only one is never dropped.
  * the rating is a linear output, its bias initialised at the training mean; ``predict`` clips
    it to the training rating range (training does not). Weights: Glorot uniform, LSTM
    recurrent weights orthogonal (section 3.3).
  * ``rating_biases: True`` (an extension, not the paper's; the default, chosen on validation, see
    benchmarks/results/lrmm.md; the paper's model is ``rating_biases: False``) adds a learned user
    bias b_u and item bias b_v (L2 ``bias_reg``) to the rating. b_u counts only where U is kept
    and b_v only where O is: m-drop drops them with their modality, and -U / -O (cold users /
    items) predict without them, as a new user or item has none.

Missing modalities in the training data (section 3.6, Table 3): ``train_missing_prob: p`` removes
each training (user, item) pair's available modalities with probability p, a fixed draw seeded by
``seed`` (one modality always kept; the rate is exactly p as for m-drop). For that pair a removed
modality is as if absent from the data: never the shared layer's or m-auto's input, no
reconstruction target, no b_u / b_v with U / O; m-drop acts on what is left. Validation and test
are untouched (+F unless ``missing``). Unlike m-drop the same modalities are missing every epoch.
The Doc2Vec vectors and the other pairs' documents still come from all training reviews.

Missing modalities at inference: ``missing: [U]`` etc. masks those modalities for every
prediction except validation (LRMMTrainer validates with all modalities: +F), so the test set
is scored with them imputed by m-auto (-U, -O: user, item cold start). ``missing_splits``
(e.g. ['+F', '-U', '-O', '-M']) scores the same test interactions once per condition from one
trained model: the test loader becomes {split name: loader} (quick_start.prepare) and
``test_condition(split)`` sets the mask per split (quick_start.evaluate_test).

Users and items it was not trained on (``score_users``, recbole_hybrid/recommend/): a new item
has no training review, O is missing (imputed: -O) and M / V come from its content; a new user
has no review, U is missing (-U), unless ``user_document: history`` (U from her given history).
Neither has a rating bias: b_u, b_v are 0.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from logging import getLogger

import torch
import torch.nn as nn
import torch.nn.functional as F
from recbole.utils import InputType

from recbole_hybrid.data.content import ContentError
from recbole_hybrid.model.abstract_recommender import ContentRecommender, as_csr
from recbole_hybrid.model.capabilities import Capabilities
from recbole_hybrid.model.layers import MeanPoolEncoder, SequenceEncoder, xavier_init
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

MODALITIES = ("U", "O", "M", "V")  # canonical order of the shared layer's input
ENCODER_KEYS = {"U": "user", "O": "item", "M": "meta", "V": "dense"}
TEXT_ENCODERS = {"mean": MeanPoolEncoder, "lstm": SequenceEncoder}
FULL = "+F"


def drop_probabilities(p, n_max):
    """q_n (n = 0..n_max available modalities): the independent drop probability whose rate,
    once an all-dropped sample keeps one of them at random, is q - q^n / n = p."""
    qs = [0.0, 0.0]
    for n in range(2, n_max + 1):
        if p >= (n - 1) / n:
            qs.append(1.0)
            continue
        low, high = 0.0, 1.0
        for _ in range(60):  # q - q^n / n increases on [0, 1]
            mid = (low + high) / 2
            low, high = (mid, high) if mid - mid**n / n < p else (low, mid)
        qs.append((low + high) / 2)
    return qs[: n_max + 1]


def keep_modalities(available, q, generator=None):
    """The modalities kept [B, n] (bool) of samples with ``available`` ones: each is dropped with
    probability q[number available], and one, picked uniformly, is kept if all were drawn."""
    count = available.sum(1)
    draws = torch.rand(available.shape, generator=generator, device=available.device)
    drop = (draws < q[count].unsqueeze(1)) & available
    everything = (drop.sum(1) == count) & (count > 0)
    if everything.any():
        rows = everything.nonzero().squeeze(1)
        pick = torch.rand(
            len(rows), available.shape[1], generator=generator, device=available.device
        )
        keep_one = pick.masked_fill(~available[rows], -1.0).argmax(1)
        drop[rows, keep_one] = False
    return available & ~drop


def kl_sparsity(hidden, rho, eps=1e-6):
    """H of eq. 20: sum over units of KL(rho || rho_hat), rho_hat = mean activation over the
    batch."""
    rho_hat = hidden.mean(0).clamp(eps, 1 - eps)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


class SparseAutoencoder(nn.Module):
    """e_hid = sigm(W_vh x + b_vh) (eq. 17), e_recon = W_hv e_hid + b_hv (eq. 18, linear output)."""

    def __init__(self, in_size, hidden_size, out_size):
        super().__init__()
        self.encoder = nn.Linear(in_size, hidden_size)
        self.decoder = nn.Linear(hidden_size, out_size)

    def forward(self, x):
        hidden = torch.sigmoid(self.encoder(x))
        return self.decoder(hidden), hidden


@dataclass
class LRMMOutput:
    rating: torch.Tensor  # [B] (not clipped)
    embeddings: torch.Tensor  # e^g [B, n, d], before dropout
    available: torch.Tensor  # [B, n] bool: the data has the modality (and it is not masked)
    kept: torch.Tensor  # [B, n] bool: available and not dropped: the autoencoders' visible input
    ae_input: torch.Tensor  # x~ [B, n * d + n]
    recon: dict  # g -> e_recon^g [B, d] (the modalities whose autoencoder ran)
    hidden: dict  # g -> e_hid^g [B, ae_hidden_size]
    biases: torch.Tensor  # [B, 2]: b_u, b_v as added to the rating (zero where U / O is not kept)


class LRMM(ContentRecommender):
    input_type = InputType.POINTWISE
    capabilities = Capabilities(rates=True, scores_new_items=True)
    new_users = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.rating_field, ratings = training_ratings(config, dataset, "LRMM (rating regression)")
        self.register_buffer("rating_range", torch.stack([ratings.min(), ratings.max()]))
        self.dataset_name = config["dataset"]
        self.has_dense = bool(config["dense_field"])
        self.modalities = self._modalities(config)
        n, d = len(self.modalities), config["hidden_size"]
        self.rho, self.sparsity_weight = config["sparsity_target"], config["sparsity_weight"]
        self._init_mdrop(config["mdrop_prob"], n)

        encoders = self._build_encoders(config, dataset, d)
        self.encoders = nn.ModuleDict({g: encoders[g] for g in self.modalities})
        self.dropout = nn.Dropout(config["dropout_prob"])
        self.autoencoders = nn.ModuleDict(
            {g: SparseAutoencoder(n * d + n, config["ae_hidden_size"], d) for g in self.modalities}
        )
        self.shared = nn.Linear(n * d, config["shared_size"])  # W_s (eq. 11)
        self.rating_out = nn.Linear(config["shared_size"], 1)
        self.loss_log_weights = nn.Parameter(
            torch.zeros(2)
        )  # s_1, s_2: alpha = exp(-s_1), beta = exp(-s_2)
        self.bias_reg = config["bias_reg"]
        if config[
            "rating_biases"
        ]:  # not the paper's: b_u rides with U, b_v with O (see the docstring)
            self.user_bias = nn.Embedding(self.n_users, 1)
            self.item_bias = nn.Embedding(self.n_items, 1)
        self._init_weights(ratings.mean())

        self._init_train_missing(config["train_missing_prob"], config["seed"], dataset)
        self.test_missing = self._condition(config["missing"], "missing")
        self.inference_missing = (
            self.test_missing
        )  # what eval-mode predictions mask (validation: +F)
        self.test_splits = {
            str(name): self._condition(name, "missing_splits")
            for name in (config["missing_splits"] or [])
        }
        self.reset_loss_stats()

    # ---- construction
    def _modalities(self, config):
        requested = list(config["modalities"] or [])
        unknown = set(requested) - set(MODALITIES)
        if unknown or not requested:
            raise ValueError(
                f"LRMM modalities {requested}: choose among U (user reviews), O (item reviews), "
                "M (item metadata), V (dense item vector)"
            )
        if "V" in requested and not self.has_dense:
            getLogger().info(
                f"LRMM: dataset {config['dataset']} has no dense modality (dense_field is empty): "
                "V is not a modality of this model"
            )
        if "O" in requested and config["user_document"] != "reviews":
            raise ContentError(
                "LRMM modality O (the item's reviews) needs user_document: reviews; "
                f"dataset {config['dataset']} has none: drop O from modalities"
            )
        if "M" in requested and not config["meta_field"]:
            raise ContentError(
                f"LRMM modality M needs meta_field (a .item token_seq or float_seq field); "
                f"dataset {config['dataset']} has none: drop M from modalities"
            )
        modalities = tuple(g for g in MODALITIES if g in requested and (g != "V" or self.has_dense))
        if not modalities:
            raise ValueError(
                f"LRMM has no modality left on dataset {config['dataset']} (modalities {requested})"
            )
        return modalities

    def _init_mdrop(self, p, n):
        p = float(p or 0.0)
        if not 0.0 <= p < 1.0 or (p > 0 and p > (n - 1) / n):
            raise ValueError(
                f"mdrop_prob {p}: must be in [0, (n-1)/n] = [0, {(n - 1) / n:.3f}] with the "
                f"{n} modalities {list(self.modalities)} (a sample always keeps one)"
            )
        self.mdrop_prob = p
        self.register_buffer("drop_q", torch.tensor(drop_probabilities(p, n)), persistent=False)

    def _init_train_missing(self, p, seed, dataset):
        """``train_missing_prob`` (Table 3): each training (user, item) pair lacks each of its
        available modalities with probability p, fixed (seeded by ``seed``), one always kept (as
        m-drop's draw)."""
        p, n = float(p or 0.0), len(self.modalities)
        if not 0.0 <= p <= (n - 1) / n:
            raise ValueError(
                f"train_missing_prob {p}: must be in [0, (n-1)/n] = [0, {(n - 1) / n:.3f}] "
                f"with the {n} modalities {list(self.modalities)} "
                "(a training pair always keeps one)"
            )
        self.train_missing_prob = p
        if p == 0:
            return
        users, items = (
            dataset.inter_feat[dataset.uid_field].long(),
            dataset.inter_feat[dataset.iid_field].long(),
        )
        with torch.no_grad():
            available = torch.stack(
                [self.encoders[g].mask(self._rows(g, users, items)).cpu() for g in self.modalities],
                1,
            )
        generator = torch.Generator().manual_seed(int(seed))
        absent = available & ~keep_modalities(
            available, torch.tensor(drop_probabilities(p, n)), generator
        )
        keys = users * self.n_items + items
        order = torch.argsort(keys)
        self.register_buffer("absent_keys", keys[order], persistent=False)  # rebuilt from the seed
        self.register_buffer("absent_table", absent[order], persistent=False)

    def _build_encoders(self, config, dataset, d):
        if config["text_encoder"] not in TEXT_ENCODERS:
            raise ValueError(
                f"text_encoder [{config['text_encoder']}] must be one of {sorted(TEXT_ENCODERS)}"
            )
        encoders = content_encoders(
            self,
            config,
            dataset,
            d,
            TEXT_ENCODERS[config["text_encoder"]],
            meta_field=config["meta_field"] if "M" in self.modalities else None,
            dense_field=config["dense_field"] if "V" in self.modalities else None,
        )
        self.own_review = own_reviews(config, encoders)
        return {g: encoders[ENCODER_KEYS[g]] for g in self.modalities}

    def _init_weights(self, mean_rating):
        xavier_init(self)  # Glorot uniform, zero biases (section 3.3)
        for module in self.modules():
            if isinstance(module, nn.LSTM):
                for name, weight in module.named_parameters():
                    if name.startswith("weight_hh"):
                        for gate in weight.data.chunk(4, 0):
                            nn.init.orthogonal_(gate)
        nn.init.constant_(self.rating_out.bias, float(mean_rating))
        for name in ("user_bias", "item_bias"):
            if hasattr(self, name):
                nn.init.zeros_(getattr(self, name).weight)

    def _condition(self, value, key):
        """Modalities masked by a condition: '+F' / [] / ~ (none), '-U', '-UO', ['U'], 'U'."""
        if value is None:
            return frozenset()
        if isinstance(value, str):
            text = value.strip()
            if text == FULL:
                return frozenset()
            letters = list(text.removeprefix("-"))
        else:
            letters = [str(v).strip().lstrip("-") for v in value]
        if "V" in letters and "V" not in self.modalities and not self.has_dense:
            raise ValueError(
                f"{key} {value}: dataset {self.dataset_name} has no dense modality "
                "(dense_field is empty), so V cannot be masked"
            )
        unknown = set(letters) - set(self.modalities)
        if unknown:
            raise ValueError(
                f"{key} {value}: {sorted(unknown)} not among this model's modalities "
                f"{list(self.modalities)} ('+F' or '-' followed by modality letters)"
            )
        if set(letters) == set(self.modalities):
            raise ValueError(f"{key} {value} masks every modality: nothing is left to impute from")
        return frozenset(letters)

    # ---- missing modalities at inference
    @contextmanager
    def missing_modalities(self, missing):
        """Within the block, eval-mode predictions mask ``missing`` (a condition, see
        ``_condition``)."""
        previous = self.inference_missing
        self.inference_missing = self._condition(missing, "missing")
        try:
            yield
        finally:
            self.inference_missing = previous

    def test_condition(self, split):
        """Context for scoring test split ``split``: its ``missing_splits`` mask, else
        ``missing``."""
        return self.missing_modalities(sorted(self.test_splits.get(split, self.test_missing)))

    # ---- the network
    def _rows(self, g, users, items):
        return users if g == "U" else items

    def _embeddings(self, users, items, own=None):
        """e^g [B, n, d] and availability [B, n]; in evaluation every user's and item's encodings
        are computed once until the weights change (ContentRecommender's cache). ``own``: per
        training pair, its review number, left out of its U and O documents."""
        if not self.training:
            cache = self._encodings()
            pairs = [
                (cache[g][0][self._rows(g, users, items)], cache[g][1][self._rows(g, users, items)])
                for g in self.modalities
            ]
        else:
            uniq = {
                "U": torch.unique(users, return_inverse=True),
                "I": torch.unique(items, return_inverse=True),
            }
            pairs = []
            for g, enc in self.encoders.items():
                if own is not None and g in (
                    "U",
                    "O",
                ):  # each pair's documents without its own review
                    rows = self._rows(g, users, items)
                    pairs.append((enc(rows, own), enc.mask(rows, own)))
                    continue
                rows, inverse = uniq["U" if g == "U" else "I"]
                pairs.append((enc(rows)[inverse], enc.mask(rows)[inverse]))
        return torch.stack([e for e, _ in pairs], 1), torch.stack([m for _, m in pairs], 1)

    def _encodings(self):
        """{g: (e^g, mask) of every user (U) or item}, computed once until the weights change
        (evaluation)."""
        if self._cache is None:
            self._cache = {}
            for g, enc in self.encoders.items():
                n_rows = self.n_users if g == "U" else self.n_items
                all_rows = torch.arange(n_rows, device=self.device)
                self._cache[g] = (encode_all(enc, n_rows, self.device), enc.mask(all_rows))
        return self._cache

    def modality_dropout(self, available):
        """m-drop: the modalities kept [B, n] (bool) of samples with ``available`` ones."""
        if self.mdrop_prob <= 0:
            return available
        return keep_modalities(available, self.drop_q)

    def training_absent(self, users, items):
        """[B, n] bool: the modalities the training pairs lack in the data
        (``train_missing_prob``), or None."""
        if self.train_missing_prob <= 0:
            return None
        keys = users.long() * self.n_items + items.long()
        pos = torch.searchsorted(self.absent_keys, keys).clamp(max=len(self.absent_keys) - 1)
        found = (self.absent_keys[pos] == keys).unsqueeze(1)
        return self.absent_table[pos] & found

    def forward(self, users, items, own=None, absent=None):
        embeddings, available = self._embeddings(users, items, own)
        return self._rate(embeddings, available, self._bias_terms(users, items), absent)

    def _rate(self, embeddings, available, biases, absent=None):
        """The network from the pairs' e^g [B, n, d], availability [B, n] and (b_u, b_v) [B, 2]
        (or None); ``absent`` [B, n]: modalities missing from the training data
        (``train_missing_prob``)."""
        if self.training:
            if absent is not None:  # as if the data had never had them: no input, no target
                available = available & ~absent
            kept = self.modality_dropout(available)
        else:
            masked = torch.tensor(
                [g in self.inference_missing for g in self.modalities], device=available.device
            )
            available = available & ~masked
            kept = available
        x = self.dropout(embeddings)
        # m-auto reads the embeddings without sending gradients back into the encoders (see above)
        ae_input = torch.cat([(x.detach() * kept.unsqueeze(2)).flatten(1), kept.float()], 1)
        recon, hidden, slots = {}, {}, []
        for j, g in enumerate(self.modalities):
            if self.training or not bool(kept[:, j].all()):  # in evaluation: only to impute
                recon[g], hidden[g] = self.autoencoders[g](ae_input)
                slots.append(torch.where(kept[:, j : j + 1], x[:, j], recon[g]))
            else:
                slots.append(x[:, j])
        joint = F.relu(self.shared(torch.cat(slots, 1)))
        biases = self._biases(biases, kept)
        rating = self.rating_out(joint).squeeze(-1) + biases.sum(1)
        return LRMMOutput(rating, embeddings, available, kept, ae_input, recon, hidden, biases)

    def _bias_terms(self, users, items):
        """(b_u, b_v) [B, 2] of the pairs (``rating_biases``), else None."""
        if not hasattr(self, "user_bias"):
            return None
        return torch.cat([self.user_bias(users), self.item_bias(items)], 1)

    def _biases(self, biases, kept):
        """[B, 2]: b_u where U is kept, b_v where O is kept (zeros without ``rating_biases``)."""
        if biases is None:
            return kept.new_zeros((len(kept), 2), dtype=torch.float)
        off = torch.zeros_like(kept[:, 0])
        on = [
            kept[:, self.modalities.index(g)] if g in self.modalities else off for g in ("U", "O")
        ]
        return biases * torch.stack(on, 1)

    def reconstruction_loss(self, out):
        """sum_g ||e_recon^g - e^g||^2 (mean over the samples that have g; e^g detached)
        + lambda_rho H^g."""
        total = 0.0
        for j, g in enumerate(self.modalities):
            has = out.available[:, j]
            if has.any():
                error = (out.recon[g] - out.embeddings[:, j].detach()).pow(2).sum(1)
                total = total + error[has].mean()
            total = total + self.sparsity_weight * kl_sparsity(out.hidden[g], self.rho)
        return total

    def loss_weights(self):
        """(alpha, beta) of eq. 22."""
        return torch.exp(-self.loss_log_weights)

    # ---- RecBole interface
    def calculate_loss(self, interaction):
        users, items = interaction[self.USER_ID], interaction[self.ITEM_ID]
        own = self.own_review(users, items) if self.own_review is not None else None
        out = self.forward(users, items, own, self.training_absent(users, items))
        mse = F.mse_loss(out.rating, interaction[self.rating_field].float())
        recon = self.reconstruction_loss(out)
        s = self.loss_log_weights
        loss = torch.exp(-s[0]) * mse + s[0] + torch.exp(-s[1]) * recon + s[1]
        if self.bias_reg and hasattr(self, "user_bias"):
            loss = loss + self.bias_reg * out.biases.pow(2).sum(1).mean()
        stats = self.loss_stats
        stats["batches"] += 1
        stats["mse"] += mse.item()
        stats["recon"] += recon.item()
        stats["dropped"] += float(
            (out.available & ~out.kept).sum() / out.available.sum().clamp(min=1)
        )
        return loss

    def reset_loss_stats(self):
        """Running sums over training batches of the MSE, the reconstruction loss and the share
        of available modalities m-drop dropped (logged per epoch by LRMMTrainer)."""
        self.loss_stats = {"batches": 0, "mse": 0.0, "recon": 0.0, "dropped": 0.0}

    def predict(self, interaction):
        low, high = self.rating_range
        return self.forward(interaction[self.USER_ID], interaction[self.ITEM_ID]).rating.clamp(
            low, high
        )

    def full_sort_predict(self, interaction, chunk=1 << 16):
        """Predicted ratings of every item for each user (ranking protocols),
        [n_users * n_items]."""
        users = interaction[self.USER_ID]
        pairs_u = users.repeat_interleave(self.n_items)
        pairs_i = torch.arange(self.n_items, device=users.device).repeat(len(users))
        low, high = self.rating_range
        return torch.cat(
            [
                self.forward(pairs_u[i : i + chunk], pairs_i[i : i + chunk]).rating
                for i in range(0, len(pairs_u), chunk)
            ]
        ).clamp(low, high)

    # ---- users and items it was not trained on (recbole_hybrid/recommend/)
    def new_item_fields(self):
        return item_fields(enc for g, enc in self.encoders.items() if g != "U")

    @torch.no_grad()
    def score_users(self, history, new_content=None, users=None, chunk=1 << 16):
        """``ContentRecommender.score_users`` (in eval mode): predicted ratings, as
        ``full_sort_predict``. Known ``users``: their U and b_u; new users: U from their history
        (``user_document: history``) or missing, imputed by m-auto (-U), b_u = 0. New items: O
        missing (-O), M / V from their content, b_v = 0. ``missing`` masks as in prediction."""
        cache, n_new = self._encodings(), new_item_count(new_content)
        n_rows = len(users) if users is not None else as_csr(history).shape[0]
        users = None if users is None else torch.as_tensor(users, device=self.device)
        tables = {}  # g -> (e^g, mask) of the B users (U) or the n_items + J items
        for g, enc in self.encoders.items():
            if g == "U":
                tables[g] = (
                    new_user_encodings(enc, history, self.n_items, self.device)
                    if users is None
                    else (cache[g][0][users], cache[g][1][users])
                )
            else:
                new_e, new_mask = new_item_encodings(enc, new_content, n_new, self.device)
                tables[g] = (torch.cat([cache[g][0], new_e]), torch.cat([cache[g][1], new_mask]))
        biases = None
        if hasattr(self, "user_bias"):
            b_u = (
                self.user_bias(users)[:, 0]
                if users is not None
                else torch.zeros(n_rows, device=self.device)
            )
            biases = (b_u, torch.cat([self.item_bias.weight[:, 0], b_u.new_zeros(n_new)]))
        n_cols = self.n_items + n_new
        rows = torch.arange(n_rows, device=self.device).repeat_interleave(n_cols)
        cols = torch.arange(n_cols, device=self.device).repeat(n_rows)
        out = []
        for i in range(0, len(rows), chunk):
            r, c = rows[i : i + chunk], cols[i : i + chunk]
            picks = [tables[g][0][r if g == "U" else c] for g in self.modalities]
            masks = [tables[g][1][r if g == "U" else c] for g in self.modalities]
            pair_biases = None if biases is None else torch.stack([biases[0][r], biases[1][c]], 1)
            out.append(self._rate(torch.stack(picks, 1), torch.stack(masks, 1), pair_biases).rating)
        low, high = self.rating_range
        return (
            torch.cat(out + [torch.zeros(0, device=self.device)])
            .clamp(low, high)
            .view(n_rows, n_cols)
        )
