r"""MDCVAE: mutually-regularized dual collaborative variational auto-encoder.

Reference: Yaochen Zhu and Zhenzhong Chen, "Mutually-Regularized Dual Collaborative
Variational Auto-encoder for Recommendation Systems", WWW 2022
(https://doi.org/10.1145/3485447.3512110; authors' code github.com/yaochenzhu/MD-CVAE).

A Multi-VAE (user-oriented VAE, UAE) whose decoder's last layer is the item latent matrix
V (n_items x K_v), coupled to an item content VAE (``layers.ContentVAE``):

  eq. (1)  u ~ N(0, I)                          user latent, q(u | r) by the UAE encoder
  eq. (3)  z_t ~ N(0, I)                        item content latent, q(z_t | x) by the content VAE
  eq. (4)  v_j = z_b + z_t  =>  v_j | z_t ~ N(z_t, lambda_v^-1 I)
  eq. (5)  r ~ Multi(softmax(V h(u) + b), #Int) h = MLP_{u,gen}(u), identity without hidden layers
  eq. (10) b-step (user VAE, content fixed):
           min  -E_q log p(r | u) + beta KL(q(u|r) || p(u)) + lambda_v ||V - Mu_t||^2
                + lambda_W/2 sum ||W_b||^2
  eq. (11) t-step (content VAE, V fixed):
           min  -E_q log p(x | z_t) + KL(q(z_t|x) || p(z_t)) + lambda_v ||v_j - mu_t,j||^2
                + lambda_W/2 sum ||W_t||^2
  eq. (13) out-of-matrix items: V_surr = [V_old ; mu_t(content of new items)].

Choices (where the paper is silent, the authors' code decides; deviations are marked):
  * Content input: bag-of-words rows divided by their largest count (``content_norm: max``),
    x in [0, 1], Bernoulli likelihood (sigmoid + BCE summed over the vocabulary).
  * The mutual-regularization terms are averaged over items and added to every batch's
    loss (the authors' ``MSELoss``: mean_j sum_k (v_jk - mu_t,jk)^2, times lambda_v; the
    paper writes lambda_v/2 ||.||_F^2). The t-step regresses the posterior mean mu_t on
    v_j (authors' code) rather than a sample z_t.
  * UAE input as Multi-VAE: L2-normalised rating row, dropout ``dropout_prob``.
  * Items with no training interaction (cold items of protocol ``cold``, or items only
    held-out users have in protocol ``strong``) are scored from their content: their V row
    is mu_t(x_j) and their bias the mean bias of trained items (V_surr, eq. 13, the
    authors' ``update_vae_coldstart``). The model knows them as the items with zero
    interactions in the dataset it is built on (RecBole passes the training split). In the
    t-step they are reconstructed but not regressed on their (untrained) V rows.
  * MD-CVAE's encoder rows of such items (never updated, paper 3.7.1) are zeroed at
    prediction; MDsymCVAE shares them with V (see mdsymcvae.py).
  * The b-step reads each batch's rating rows as their non-zeros (``sparse_user_rows``,
    model/user_rows.py): normalisation, dropout, the first encoder layer and eq. (5)'s
    log-likelihood cost what the rows hold; the math is the dense path's.
Training in stages (content VAE pretraining, then b-step / t-step per epoch) is
``recbole_hybrid.trainer.MDCVAETrainer``.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from recbole.model.abstract_recommender import AutoEncoderMixin
from recbole.utils import InputType

from recbole_hybrid.model.abstract_recommender import ContentRecommender
from recbole_hybrid.model.capabilities import Capabilities
from recbole_hybrid.model.layers import (
    MLP,
    ContentVAE,
    csr_rows_sparse,
    gaussian_kl,
    glorot_,
    input_major_,
    l2_weights,
    reparameterize,
    xavier_init,
)
from recbole_hybrid.model.user_rows import SparseRows


class MDCVAE(ContentRecommender, AutoEncoderMixin):
    input_type = InputType.PAIRWISE
    input_rows = "user"
    # new users folded in from their history; items without training interactions scored from
    # content
    capabilities = Capabilities(folds_in_users=True, scores_new_items=True)
    symmetric = False

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.build_histroy_items(dataset)
        hidden = list(config["mlp_hidden_size"] or [])
        self.hidden = hidden
        self.latent_dim = config["latent_dimension"]  # K_u
        self.item_dim = hidden[0] if hidden else self.latent_dim  # K_v
        self.drop_out = config["dropout_prob"]
        self.lambda_v = config["lambda_v"]
        self.lambda_w = config["lambda_w"]
        self.anneal_cap = config["anneal_cap"]
        self.total_anneal_steps = config["total_anneal_steps"]  # None: set by the trainer
        self.update = 0
        self.content_beta = config["content_beta"]
        self.init_v_from_content = config["init_v_from_content"]
        self.sparse_user_rows = config["sparse_user_rows"]

        # item content x_j (normalised), and which items it may stand in for
        content = self.item_content(dataset, config["content_field"])
        self.content_matrix = self.normalize_training_content(
            content.to_scipy(), config["content_norm"]
        )
        counts = np.bincount(dataset.inter_feat[dataset.iid_field].numpy(), minlength=self.n_items)
        self.trained = counts > 0  # items with training interactions
        self.trained[0] = False

        self.content_vae = ContentVAE(
            self.content_matrix.shape[1],
            config["content_hidden_sizes"] or [],
            self.item_dim,
            act=config["content_activation"],
            likelihood=config["content_likelihood"],
            tied=config["content_tied"],
        )
        # UAE: encoder r -> (mu_u, logvar_u); decoder u -> h -> logits = V h + b
        self.V = nn.Parameter(torch.empty(self.n_items, self.item_dim))  # last decoder layer
        self.item_bias = nn.Parameter(torch.zeros(self.n_items))
        self.enc_in_bias = nn.Parameter(torch.zeros(self.item_dim))
        if not self.symmetric:
            self.W_in = nn.Parameter(
                torch.empty(self.n_items, self.item_dim)
            )  # first encoder layer
        if hidden:
            self.enc_mlp = MLP(hidden + [2 * self.latent_dim], act="tanh")
            self.dec_mlp = MLP([self.latent_dim] + hidden[::-1], act="tanh", last_activation="tanh")
        else:
            self.enc_logvar = input_major_(nn.Linear(self.n_items, self.latent_dim))
        self.register_buffer("z_t", torch.zeros(self.n_items, self.item_dim), persistent=False)
        # 1 for items with content: the items eq. (10)'s coupling term averages over
        self.register_buffer(
            "with_content", torch.from_numpy(self.has_content).float(), persistent=False
        )
        xavier_init(self)
        glorot_(self.V)
        if not self.symmetric:
            glorot_(self.W_in)

    # ---- parameters of the two halves (b-step / t-step optimizers) ----
    def user_vae_parameters(self):
        content = {id(p) for p in self.content_vae.parameters()}
        return [p for p in self.parameters() if id(p) not in content]

    def user_vae_weights(self):
        """Weight matrices of the UAE other than V (lambda_W decay; V has lambda_v)."""
        ws = [] if self.symmetric else [self.W_in]
        if self.hidden:
            ws += self.enc_mlp.weights() + self.dec_mlp.weights()
        else:
            ws.append(self.enc_logvar.weight)
        return ws

    @property
    def encoder_item_weight(self):
        """First encoder layer as item embeddings [n_items, d1] (MDsym: V itself)."""
        return self.V if self.symmetric else self.W_in

    # ---- the networks ----
    def encode(self, rating_matrix, w_in=None):
        """q(u | r): (mu, logvar) of rating rows, dense [B, n] or ``SparseRows``."""
        w_in = self.encoder_item_weight if w_in is None else w_in
        if isinstance(rating_matrix, SparseRows):
            r = rating_matrix.normalized().dropout(self.drop_out, self.training)
            h = r.matmul(w_in) + self.enc_in_bias
            logvar_in = (
                None
                if self.hidden
                else (
                    r.first_columns(self.enc_logvar.in_features).matmul(self.enc_logvar.weight.t())
                    + self.enc_logvar.bias
                )
            )
        else:
            r = F.dropout(F.normalize(rating_matrix), self.drop_out, training=self.training)
            h = r @ w_in + self.enc_in_bias  # eq. (9): sum of the embeddings of the user's items
            logvar_in = (
                None
                if self.hidden
                else F.linear(
                    r[:, : self.enc_logvar.in_features],
                    self.enc_logvar.weight,
                    self.enc_logvar.bias,
                )
            )
        if self.hidden:
            mu, logvar = self.enc_mlp(torch.tanh(h)).chunk(2, dim=1)
        else:
            mu, logvar = h, logvar_in
        return mu, logvar.clamp(-20, 10)

    def decode(self, u, V=None, bias=None):
        """Logits of eq. (5): V h(u) + b."""
        h = self.dec_mlp(u) if self.hidden else u
        V = self.V if V is None else V
        return F.linear(h, V, self.item_bias if bias is None else bias)  # one fused addmm

    def forward(self, rating_matrix):
        mu, logvar = self.encode(rating_matrix)
        u = reparameterize(mu, logvar, self.training)
        return self.decode(u), mu, logvar

    # ---- content side ----
    def content_rows(self, items):
        return csr_rows_sparse(self.content_matrix, items, self.device)

    @torch.no_grad()
    def refresh_content_targets(self):
        """Fix Mu_t = mu_t(X) for the b-step (eq. 10's hat Z_t)."""
        self.z_t = self.content_means().to(self.device)

    def content_only_items(self):
        """Items scored from content alone: content, but no training interaction."""
        return np.flatnonzero(self.has_content & ~self.trained)

    @torch.no_grad()
    def item_factors(self):
        """(V_surr, b_surr, W_in) used for prediction (eq. 13), cached until train()/load."""
        if self._cache is None:
            V, bias = self.V.detach().clone(), self.item_bias.detach().clone()
            cold = self.content_only_items()
            trained = torch.from_numpy(self.trained[: len(bias)])
            if len(cold):
                cold_t = torch.from_numpy(cold)
                V[cold_t] = self.content_means(cold)
                bias[cold_t] = self.new_item_bias(bias)
            if self.symmetric:
                w_in = V
            else:  # rows never trained (paper 3.7.1) contribute nothing
                w_in = self.W_in.detach() * trained.to(self.device, V.dtype).unsqueeze(1)
            self._cache = (V, bias, w_in)
        return self._cache

    @torch.no_grad()
    def surrogate_factors(self, content_rows=None):
        """(V_surr, b_surr, W_in_surr, x_new) of the model's items plus new items of raw content
        ``content_rows`` (eq. 13): V rows mu_t(x), the bias of ``new_item_bias``, encoder rows
        V's (MDsymCVAE) or zero (MDCVAE: never trained, as cold items); x_new normalised."""
        V, bias, w_in = self.item_factors()
        if content_rows is None:
            return V, bias, w_in, None
        x_new = self.normalize_content(content_rows)
        v_new = self.encode_content_rows(x_new).to(V.device)
        w_new = v_new if self.symmetric else torch.zeros_like(v_new)
        b_new = self.new_item_bias(bias).expand(len(v_new))
        return torch.cat([V, v_new]), torch.cat([bias, b_new]), torch.cat([w_in, w_new]), x_new

    def new_item_bias(self, bias):
        """Bias of an item scored from content alone: the mean bias of trained items."""
        trained = torch.from_numpy(self.trained[: len(bias)]).to(bias.device)
        return bias[trained].mean() if trained.any() else bias.new_zeros(())

    # ---- losses ----
    def kl_weight(self):
        if self.total_anneal_steps and self.total_anneal_steps > 0:
            return min(self.anneal_cap, self.update / self.total_anneal_steps)
        return self.anneal_cap

    def user_rows(self, users):
        """The batch's rating rows: their non-zeros (``sparse_user_rows``), else dense."""
        if self.sparse_user_rows:
            return SparseRows.from_history(self.history_item_id, self.history_item_value, users)
        return self.get_rating_matrix(users)

    def calculate_loss(self, interaction):
        """b-step loss, eq. (10): (multinomial NLL, beta * KL, content + weight regularisation)."""
        rows = self.user_rows(interaction[self.USER_ID])
        self.update += 1
        logits, mu, logvar = self.forward(rows)
        if isinstance(rows, SparseRows):
            nll = -rows.multinomial_log_likelihood(logits).mean()
        else:
            nll = -(F.log_softmax(logits, 1) * rows).sum(1).mean()
        kl = self.kl_weight() * gaussian_kl(mu, logvar).mean()
        gap = (self.V - self.z_t).pow(2).sum(1)  # over items with content: no row copies
        reg_v = self.lambda_v * (gap * self.with_content).sum() / self.with_content.sum()
        return nll, kl, reg_v + self.lambda_w * l2_weights(self.user_vae_weights())

    def content_loss(self, items, coupled=True, kl_weight=1.0):
        """t-step loss, eq. (11), for a batch of item ids (V fixed). ``coupled=False``:
        the content VAE's own negative ELBO (pretraining; ``kl_weight`` for KL warm-up)."""
        x = self.content_rows(items)
        elbo, mu, _, decay = self.content_vae.loss(
            x, beta=self.content_beta * kl_weight, lambda_w=self.lambda_w
        )
        loss = elbo.mean() + decay
        if coupled:
            items_t = torch.as_tensor(np.asarray(items), device=self.device)
            keep = torch.from_numpy(self.trained[np.asarray(items)]).to(self.device)
            diff = (mu - self.V.detach()[items_t]).pow(2).sum(1)
            loss = loss + self.lambda_v * (diff * keep).sum() / max(len(items), 1)
        return loss

    @torch.no_grad()
    def init_items_from_content(self):
        """V <- mu_t(X) (and MD-CVAE's W_in <- mu_t(X)) for items with content (option
        ``init_v_from_content``; not in the paper, which starts V at random)."""
        mask = torch.from_numpy(self.has_content).to(self.device)
        mu = self.content_means().to(self.device)
        self.V[mask] = mu[mask]
        if not self.symmetric:
            self.W_in[mask] = mu[mask]
        self._cache = None

    def pretrain_key(self):
        """What the pretrained content VAE depends on besides the pretraining settings."""
        return {
            "architecture": repr(self.content_vae),
            "likelihood": self.content_vae.likelihood,
            "content_norm": self.content_norm,
            "content_beta": self.content_beta,
            "lambda_w": self.lambda_w,
        }

    def after_pretraining(self):
        if self.init_v_from_content:
            self.init_items_from_content()

    # ---- prediction ----
    def scores(self, rating_matrix):
        """Logits of every item for rating rows (dense [B, n <= n_items] or ``SparseRows``)."""
        V, bias, w_in = self.item_factors()
        if not isinstance(rating_matrix, SparseRows):
            w_in = w_in[: rating_matrix.shape[1]]
        mu, _ = self.encode(rating_matrix, w_in=w_in)
        return self.decode(mu, V, bias)

    def predict(self, interaction):
        user, item = interaction[self.USER_ID], interaction[self.ITEM_ID]
        scores = self.scores(self.user_rows(user))
        return scores[torch.arange(len(item), device=self.device), item]

    def full_sort_predict(self, interaction):
        return self.scores(self.user_rows(interaction[self.USER_ID])).view(-1)

    @torch.no_grad()
    def score_users(self, history, new_content=None, users=None):
        """``ContentRecommender.score_users``: users encoded from their history rows (over the
        model's items, or also the new items'), new items with V_surr rows (eq. 13)."""
        V, bias, w_in, _ = self.surrogate_factors(new_content)
        rows = self.history_tensor(history, len(V))
        mu, _ = self.encode(
            SparseRows.from_dense(rows) if self.sparse_user_rows else rows, w_in=w_in
        )
        return self.decode(mu, V, bias)
