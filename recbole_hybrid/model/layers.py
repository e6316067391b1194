"""Shared building blocks: MLP, Gaussian latent helpers and the item content VAE.

The networks here are plain ``nn.Module``s that know nothing about RecBole; models
(MDCVAE, MDsymCVAE, CVAE, ...) wrap them (Cornac style: network apart from wrapper).

Notation (MD-CVAE, Zhu & Chen, WWW'22, section 3): x_j is item j's content row,
z_t its latent content variable with q(z_t | x_j) = N(mu_t, diag(exp(logvar_t))),
p(z_t) = N(0, I) (eq. 3), p(x | z_t) Bernoulli or multinomial over the vocabulary.
"""

import math

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_hybrid.model.likelihoods import bernoulli_nll, multinomial_nll
from recbole_hybrid.model.shared_weight import shared_weight
from recbole_hybrid.model.user_rows import SparseRows

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "none": nn.Identity,
    None: nn.Identity,
}


def activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation [{name}]; known: {sorted(k for k in ACTIVATIONS if k)}"
        )
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """Stack of Linear + activation; ``sizes = [in, h1, ..., out]``. ``last_activation``
    applies to the output layer (default: none, e.g. for logits / Gaussian parameters)."""

    def __init__(self, sizes, act="tanh", last_activation=None):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.acts = nn.ModuleList(
            activation(act if i < len(self.linears) - 1 else last_activation)
            for i in range(len(self.linears))
        )

    def forward(self, h):
        for linear, act in zip(self.linears, self.acts):
            h = act(linear(h))
        return h

    def weights(self):
        return [linear.weight for linear in self.linears]


def linear_any(x, weight, bias=None):
    """``F.linear`` that also takes a sparse ``x`` (bag-of-words rows): x W^T + b as a sum of
    the rows of W^T that x's non-zeros select (``SparseRows.matmul``), so the cost of a first
    layer follows x's non-zeros, not the vocabulary size. Fastest when W^T is contiguous
    (``input_major_``)."""
    if not x.is_sparse:
        return F.linear(x, weight, bias)
    out = SparseRows.from_sparse(x).matmul(weight.t())
    return out if bias is None else out + bias


def input_major_(linear):
    """Keep a Linear's weight W [out, in] as the transpose of a contiguous [in, out] matrix:
    the same values, shape and state_dict, but the rows of W^T that a sparse input selects
    (``linear_any``) are read and their gradient accumulated without copying W^T every batch
    (torch gives the gradient the parameter's layout). For layers fed sparse rows."""
    weight = linear.weight
    linear.weight = nn.Parameter(weight.detach().t().contiguous().t(), weight.requires_grad)
    return linear


def mask_noise(x, level, generator=None):
    """Zero each entry with probability ``level`` (masking noise: CVAE's 'mask-0.3',
    DualNet's noise injection); zeros stay zero, so a sparse ``x`` only has its stored
    values masked. ``generator`` None: torch's global RNG."""
    if level <= 0:
        return x
    if x.is_sparse:
        keep = torch.rand(x.values().shape, generator=generator, device=x.device) >= level
        return torch.sparse_coo_tensor(
            x.indices(), x.values() * keep, x.shape, check_invariants=False
        )
    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= level)


def dense(x):
    return x.to_dense() if x.is_sparse else x


def reparameterize(mu, logvar, training):
    """z = mu + eps * sigma, eps ~ N(0, I) (MD-CVAE eq. 12); the mean when not training."""
    if not training:
        return mu
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def gaussian_kl(mu, logvar):
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per row."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def normalize_bow(content, mode="max", idf=None):
    """Content rows as the VAE's input/target (scipy CSR in, float32 CSR out).

    ``max``: each row divided by its largest count, so x_j in [0, 1] (CDL / CVAE /
    MD-CVAE's "normalised bag-of-words", the target of the Bernoulli likelihood);
    ``l1``: rows sum to one; ``binary``: word present or not; ``tfidf``: TF-IDF rows of unit
    length, with ``idf`` (new items: the training items' idf) or idf over these rows;
    ``none``: raw counts.
    """
    content = sp.csr_matrix(content, dtype=np.float32)
    if mode == "tfidf":
        return sp.csr_matrix(tfidf_rows(content, idf))
    if mode == "none":
        return content
    if mode == "binary":
        content = content.copy()
        content.data[:] = 1.0
        return content
    if mode == "max":
        scale = content.max(axis=1).toarray().ravel()
    elif mode == "l1":
        scale = np.asarray(abs(content).sum(axis=1)).ravel()
    else:
        raise ValueError(f"unknown content_norm [{mode}]: max, l1, binary, tfidf or none")
    return (sp.diags(1.0 / np.maximum(scale, 1e-12)).astype(np.float32) @ content).tocsr()


def idf_weights(content):
    """idf_w = log(N / df_w) over the N rows with content of a CSR item x word matrix."""
    content = sp.csr_matrix(content)
    n_docs = max(int((content.getnnz(axis=1) > 0).sum()), 1)
    df = np.bincount(content.indices, minlength=content.shape[1])
    return np.log(n_docs / np.maximum(df, 1)).astype(np.float32)


def tfidf_rows(content, idf=None):
    """TF-IDF weighting (``idf``, default: over these rows) and L2 row normalisation."""
    content = sp.csr_matrix(content, dtype=np.float32)
    idf = idf_weights(content) if idf is None else np.asarray(idf, dtype=np.float32)
    return l2_normalize_rows(content @ sp.diags(idf))


def l2_normalize_rows(matrix):
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ matrix


class ContentVAE(nn.Module):
    """Item content VAE (the "dual item VAE" of MD-CVAE, the VAE of CVAE).

    encoder  h = MLP_enc(x)                      (``hidden_sizes``, ``act``)
             mu_t, logvar_t = Linear(h), Linear(h)
    decoder  x_hat = MLP_dec(z_t)                mirror of the encoder; with ``tied`` the
             layers reuse the encoder's weights transposed (own biases), as the
             reference implementation's SymetricMLP.
    likelihood ``bernoulli``: log p(x|z) = sum_w x_w log s(l_w) + (1-x_w) log(1-s(l_w))
               on x in [0, 1]; ``multinomial``: sum_w x_w log softmax(l)_w.
    """

    def __init__(
        self,
        input_dim,
        hidden_sizes=(150, 150),
        latent_dim=150,
        act="sigmoid",
        likelihood="bernoulli",
        tied=True,
    ):
        super().__init__()
        if likelihood not in ("bernoulli", "multinomial"):
            raise ValueError(f"content likelihood [{likelihood}]: bernoulli or multinomial")
        self.likelihood, self.tied, self.latent_dim = likelihood, tied, latent_dim
        sizes = [input_dim] + list(hidden_sizes)
        self.encoder = MLP(sizes, act=act, last_activation=act) if hidden_sizes else nn.Identity()
        if hidden_sizes:
            input_major_(self.encoder.linears[0])  # fed sparse bag-of-words rows
        last = sizes[-1]
        self.mu = nn.Linear(last, latent_dim)
        self.logvar = nn.Linear(last, latent_dim)
        self.act = activation(act)
        if hidden_sizes:
            # first decoder layer: latent -> last hidden (own weights, as the reference's
            # latent_out)
            self.latent_out = nn.Linear(latent_dim, last)
            rev = sizes[::-1]
            if tied:
                self.dec_biases = nn.ParameterList(nn.Parameter(torch.zeros(n)) for n in rev[1:])
            else:
                self.dec_linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(rev[:-1], rev[1:]))
        else:
            self.latent_out = nn.Linear(latent_dim, input_dim)
        self.n_hidden = len(hidden_sizes)

    def encode(self, x, first_rows=None):
        """(mu_t, logvar_t) of content rows ``x`` (dense, or sparse: see ``linear_any``).
        ``first_rows``: the first layer's W^T from ``shared_weight`` (training)."""
        if self.n_hidden:
            first, act = self.encoder.linears[0], self.encoder.acts[0]
            if first_rows is None:
                h = linear_any(x, first.weight, first.bias)
            elif x.is_sparse:  # gradient: the selected rows only, added by shared_weight
                h = SparseRows.from_sparse(x).matmul(first_rows, sparse_grad=True) + first.bias
            else:
                h = F.linear(x, first_rows.t(), first.bias)
            h = act(h)
            for linear, act in zip(self.encoder.linears[1:], self.encoder.acts[1:]):
                h = act(linear(h))
        else:
            h = dense(x)
        return self.mu(h), self.logvar(h).clamp(-20, 10)

    def decode(self, z, first_rows=None):
        """Logits of p(x | z); ``first_rows`` as in ``encode`` (tied last layer)."""
        h = self.latent_out(z)
        if not self.n_hidden:
            return h
        h = self.act(h)
        if self.tied:
            rows = [lin.weight.t() for lin in self.encoder.linears][::-1]  # W^T [in, out] each
            if first_rows is not None:
                rows[-1] = first_rows
            for i, (w, b) in enumerate(zip(rows, self.dec_biases)):
                h = F.linear(h, w, b)
                if i < len(rows) - 1:
                    h = self.act(h)
            return h
        for i, lin in enumerate(self.dec_linears):
            h = lin(h)
            if i < len(self.dec_linears) - 1:
                h = self.act(h)
        return h

    def forward(self, x):
        return self.penalized(x, 0.0)[:3]

    def penalized(self, x, lambda_w):
        """(logits, mu, logvar, lambda_w / 2 sum ||W||^2 over ``weights()``): the forward pass
        and the weight decay of eqs. 10-11. With tied layers the first layer's weight goes
        through ``shared_weight``, so its three gradients (encoder, decoder, decay) are added
        in one pass."""
        if self.tied and self.n_hidden:
            first = self.encoder.linears[0].weight
            first_rows, last_rows, decay = shared_weight(first, with_norm=lambda_w != 0)
            others = [w for w in self.weights() if w is not first]
        else:
            first_rows = last_rows = None
            decay, others = 0.0, self.weights()
        mu, logvar = self.encode(x, first_rows)
        logits = self.decode(reparameterize(mu, logvar, self.training), last_rows)
        if lambda_w == 0:
            return logits, mu, logvar, 0.0
        return logits, mu, logvar, lambda_w * (decay + l2_weights(others))

    def nll(self, logits, x):
        """-log p(x | z) per row (x dense or sparse: model/likelihoods.py)."""
        if self.likelihood == "bernoulli":
            return bernoulli_nll(logits, x)
        return multinomial_nll(logits, x)

    def loss(self, x, beta=1.0, lambda_w=0.0):
        """(negative ELBO per row (eq. 8's content part): -E_q log p(x|z_t) + beta KL(q||p),
        mu, logvar, the weight decay of ``penalized``)."""
        logits, mu, logvar, decay = self.penalized(x, lambda_w)
        return self.nll(logits, x) + beta * gaussian_kl(mu, logvar), mu, logvar, decay

    @torch.no_grad()
    def mu_t(self, x):
        """Posterior means mu_t of a batch of content rows (the items' content embeddings)."""
        return self.encode(x)[0]

    def weights(self):
        """Weight matrices (for the lambda_W weight decay of eqs. 10-11)."""
        ws = [self.mu.weight, self.logvar.weight, self.latent_out.weight]
        if self.n_hidden:
            ws += self.encoder.weights()
            if not self.tied:
                ws += [lin.weight for lin in self.dec_linears]
        return ws


def csr_rows_sparse(matrix, rows, device="cpu"):
    """The given rows of a scipy CSR matrix as a torch sparse COO tensor (float32)."""
    coo = matrix[np.asarray(rows)].tocoo()
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(
        index,
        torch.from_numpy(coo.data.astype(np.float32)),
        coo.shape,
        device=device,
        check_invariants=False,
    ).coalesce()


class _HalfSquaredNorm(torch.autograd.Function):
    """sum_p ||p||^2 / 2 and its gradient p, without the temporaries of p.pow(2).sum():
    one norm per matrix forward, one product backward."""

    @staticmethod
    def forward(ctx, *params):
        ctx.save_for_backward(*params)
        return sum(torch.linalg.vector_norm(p).square() for p in params) / 2  # any layout

    @staticmethod
    def backward(ctx, grad):
        return tuple(p * grad for p in ctx.saved_tensors)


def l2_weights(params):
    """sum ||W||^2 / 2 over the weight matrices ``params`` (weight decay lambda_W / 2 ||W||^2)."""
    return _HalfSquaredNorm.apply(*params) if params else 0.0


def xavier_init(module):
    """Glorot init of Linear layers (the reference uses glorot_uniform), zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def glorot_(param):
    bound = math.sqrt(6.0 / sum(param.shape))
    with torch.no_grad():
        param.uniform_(-bound, bound)
    return param


class DocumentEncoder(nn.Module):
    """Base of the encoders of a ``Documents`` table (recbole_hybrid/data/reviews.py): its
    pretrained unit vectors (Doc2Vec; frozen unless ``finetune``) and rows, rebuilt from the
    dataset (not saved in checkpoints). ``exclude`` (one training review number per row, 0 for
    none) leaves that review's units out of the row: a training pair's own review
    (``own_review: exclude``). ``encode(ids, lengths)`` encodes rows given as unit ids (new
    users' or items' documents: ``max_len`` units, ``vocab`` for words); ``field``: the ``.item``
    field it reads, if any (set by ``modalities.content_encoders``)."""

    field = None

    def __init__(self, documents, finetune=False):
        super().__init__()
        self.units = nn.Embedding.from_pretrained(
            documents.units, freeze=not finetune, padding_idx=0
        )
        self.register_buffer("ids", documents.ids, persistent=False)
        self.register_buffer("lengths", documents.lengths, persistent=False)
        self.register_buffer("sources", documents.sources, persistent=False)
        self.max_len, self.vocab = documents.max_len, documents.vocab

    def forward(self, rows, exclude=None):
        return self.encode(*self.rows(rows, exclude))

    def rows(self, rows, exclude=None):
        """(unit ids [B, L], lengths [B]) of the rows, without the excluded review's units."""
        ids, lengths = self.ids[rows], self.lengths[rows]
        if exclude is None or self.sources is None:
            return ids, lengths
        drop = (self.sources[rows] == exclude.unsqueeze(1)) & (exclude.unsqueeze(1) > 0)
        if not drop.any():
            return ids, lengths
        keep = (ids > 0) & ~drop
        order = torch.argsort(
            (~keep).to(torch.int8), dim=1, stable=True
        )  # kept units first, in order
        return torch.gather(ids * keep, 1, order), keep.sum(1)

    def mask(self, rows, exclude=None):
        """True where the row (without ``exclude``) has at least one unit."""
        return self.rows(rows, exclude)[1] > 0


class SequenceEncoder(DocumentEncoder):
    """LSTM over a row's sequence of unit vectors (reviews or words): its last hidden state h_T
    (DEAMER eqs. 1-3, LRMM's LSTM option)."""

    def __init__(self, documents, hidden_size, finetune=False):
        super().__init__(documents, finetune)
        self.lstm = nn.LSTM(documents.dim, hidden_size, batch_first=True)
        self.output_size = hidden_size

    def encode(self, ids, lengths):
        lengths = lengths.clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(
            self.units(ids[:, : int(lengths.max())]),
            lengths.cpu(),
            batch_first=True,
            enforce_sorted=False,
        )
        _, (h, _) = self.lstm(packed)
        return h[-1]


class MeanPoolEncoder(DocumentEncoder):
    """Average pooling over a row's unit vectors, then a linear map: e = W (1/T sum_t x_t) + b
    (LRMM eq. 9, average pooling, on the word vectors); an empty row gives b."""

    def __init__(self, documents, out_size, finetune=False):
        super().__init__(documents, finetune)
        self.linear = nn.Linear(documents.dim, out_size)
        self.output_size = out_size

    def encode(self, ids, lengths):
        ids = ids[:, : max(int(lengths.max()), 1)]
        # padding (id 0) is left out of each bag's mean; an empty bag is zero
        return self.linear(F.embedding_bag(ids, self.units.weight, mode="mean", padding_idx=0))


class VectorEncoder(nn.Module):
    """A dense content vector (image / audio / sentence embedding) -> ReLU(W x) (DEAMER eq. 6
    with the CNN's output given: the dataset's vectors are already a network's features)."""

    field = None  # the ``.item`` field of the vectors (set by ``modalities.content_encoders``)

    def __init__(self, vectors, hidden_size, present=None):
        super().__init__()
        self.register_buffer("vectors", vectors.float(), persistent=False)
        present = torch.ones(len(vectors), dtype=torch.bool) if present is None else present
        self.register_buffer("present", present, persistent=False)
        self.linear = nn.Linear(vectors.shape[1], hidden_size)
        self.output_size = hidden_size

    def mask(self, rows, exclude=None):
        return self.present[rows]

    @property
    def width(self):
        return self.vectors.shape[1]

    def forward(self, rows, exclude=None):  # exclude: a vector holds no review
        return self.encode(self.vectors[rows])

    def encode(self, vectors):
        return F.relu(self.linear(vectors))


def pair_keys(users, items, n_items):
    return users.long() * n_items + items.long()


def sample_negatives(users, n_neg, positive_keys, n_items, max_rounds=1000):
    """``n_neg`` items per user in ``users``, uniform over 1..n_items-1, never one of the
    user's positives (``positive_keys``: sorted ``pair_keys`` of her positive pairs).
    Returns [len(users), n_neg] long. Uses torch's global generator (RecBole seeds it)."""
    users = users.repeat_interleave(n_neg)
    items = torch.randint(1, n_items, users.shape, device=users.device)
    for _ in range(max_rounds):
        keys = pair_keys(users, items, n_items)
        pos = torch.searchsorted(positive_keys, keys).clamp(max=len(positive_keys) - 1)
        clash = positive_keys[pos] == keys
        if not clash.any():
            return items.view(-1, n_neg)
        items[clash] = torch.randint(1, n_items, (int(clash.sum()),), device=users.device)
    raise ValueError("negative sampling: some users interacted with (almost) every item")
