"""Layer-wise pretraining of a ``ContentVAE`` (the CVAE authors' lib/vae.py schedule).

Trained end to end from random weights, the content VAE collapses on sparse bag-of-words
(its KL term near zero, mu nearly constant over items), and the collaborative model then gets
no content signal. The authors avoid it by:
  1. each hidden layer as a tied-weight denoising autoencoder (masking noise, sigmoid,
     cross-entropy) on the previous layer's codes,
  2. the Gaussian latent layer as a small VAE on the last hidden codes,
  3. the whole VAE (-ELBO) from these weights (trainer.ContentVAETrainer).
"""

import hashlib
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_hybrid.model.layers import (
    dense,
    gaussian_kl,
    input_major_,
    linear_any,
    mask_noise,
    reparameterize,
)
from recbole_hybrid.model.likelihoods import bernoulli_nll
from recbole_hybrid.optimizers import adam


def _batches(n, batch_size, rng):
    order = rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def reconstruction_loss(kind, out, x, act):
    """``bce``: inputs in [0, 1], cross-entropy on logits ``out``; ``mse``: inputs in the
    activation's range (e.g. tanh codes), squared error of ``act(out)``. Summed per row."""
    if kind == "bce":
        return bernoulli_nll(out, x)  # x dense or sparse
    if kind == "mse":
        return (act(out) - dense(x)).pow(2).sum(1)
    raise ValueError(f"unknown reconstruction loss [{kind}]: bce or mse")


def no_report(stage, done, total, loss=None):
    """What the pretraining loops call after each epoch (progress.ProgressLog reports them)."""


def new_encoder_layer(in_dim, out_dim):
    """A denoising autoencoder layer before its xavier init (drawn from the layer's own
    generator). Building it draws torch's default init from the global RNG: a stage whose
    result is loaded from a cache builds its layers all the same, so that the stages after
    it see the same random stream as after training (``HiddenLayers.draw_as_trained``)."""
    return input_major_(nn.Linear(in_dim, out_dim))


def train_dae_layer(
    rows,
    n,
    in_dim,
    out_dim,
    act,
    epochs,
    lr,
    batch_size,
    noise,
    seed,
    recon="bce",
    report=no_report,
    stage="denoising autoencoder layer",
):
    """One tied-weight denoising autoencoder layer; ``rows(idx)`` gives its inputs (dense
    or sparse; in [0, 1] for ``recon='bce'``). Returns (encoder Linear, decoder bias)."""
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    encoder = new_encoder_layer(in_dim, out_dim)
    nn.init.xavier_uniform_(encoder.weight, generator=generator)
    nn.init.zeros_(encoder.bias)
    dec_bias = nn.Parameter(torch.zeros(in_dim))
    optimizer = adam(list(encoder.parameters()) + [dec_bias], lr=lr)
    report(stage, 0, epochs)
    for epoch in range(epochs):
        total = 0.0
        for idx in _batches(n, batch_size, rng):
            x = rows(idx)
            h = act(linear_any(mask_noise(x, noise, generator), encoder.weight, encoder.bias))
            loss = reconstruction_loss(
                recon, F.linear(h, encoder.weight.t(), dec_bias), x, act
            ).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        report(stage, epoch + 1, epochs, total / n)
    return encoder, dec_bias.detach()


def train_latent_layer(codes, latent_dim, epochs, lr, batch_size, seed, report=no_report):
    """Gaussian latent layer as a VAE on the last hidden codes (Bernoulli reconstruction)."""
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    dim = codes.shape[1]
    mu, logvar, out = (
        nn.Linear(dim, latent_dim),
        nn.Linear(dim, latent_dim),
        nn.Linear(latent_dim, dim),
    )
    for layer in (mu, logvar, out):
        nn.init.xavier_uniform_(layer.weight, generator=generator)
        nn.init.zeros_(layer.bias)
    params = [*mu.parameters(), *logvar.parameters(), *out.parameters()]
    optimizer = adam(params, lr=lr)
    report("latent layer", 0, epochs)
    for epoch in range(epochs):
        total = 0.0
        for idx in _batches(len(codes), batch_size, rng):
            h = codes[idx]
            m, lv = mu(h), logvar(h).clamp(-20, 10)
            recon = F.binary_cross_entropy_with_logits(
                out(reparameterize(m, lv, True)), h, reduction="none"
            ).sum(1)
            loss = (recon + gaussian_kl(m, lv)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        report("latent layer", epoch + 1, epochs, total / len(codes))
    return mu, logvar, out


@torch.no_grad()
def _codes(rows, n, layer, act, batch_size=4096):
    return torch.cat(
        [
            act(linear_any(rows(np.arange(i, min(i + batch_size, n))), layer.weight, layer.bias))
            for i in range(0, n, batch_size)
        ]
    )


def pretrain_dae_stack(
    linears,
    rows,
    n,
    act,
    epochs,
    lr,
    batch_size,
    noise,
    seed,
    recon=("bce", "mse"),
    report=no_report,
):
    """Stacked denoising autoencoders (Vincent et al., 2010), written into ``linears``:
    layer i is trained on the codes of layers < i. ``recon[i]`` (the last entry repeats)
    is layer i's reconstruction loss. Returns (decoder biases, codes of the last layer)."""
    get, dec_biases, codes = rows, [], None
    for i, linear in enumerate(linears):
        encoder, dec_bias = train_dae_layer(
            get,
            n,
            linear.in_features,
            linear.out_features,
            act,
            epochs,
            lr,
            batch_size,
            noise,
            seed + i,
            recon[min(i, len(recon) - 1)],
            report,
            f"denoising autoencoder layer {i + 1}/{len(linears)}",
        )
        with torch.no_grad():
            linear.weight.copy_(encoder.weight)
            linear.bias.copy_(encoder.bias)
        dec_biases.append(dec_bias)
        codes = _codes(get, n, encoder, act)
        get = codes.__getitem__
    return dec_biases, codes


def draw_dae_stack_as_trained(linears):
    """What ``pretrain_dae_stack`` draws from torch's global RNG (``new_encoder_layer``), for
    a result loaded from the cache: the stages after it then see the same random stream."""
    for linear in linears:
        new_encoder_layer(linear.in_features, linear.out_features)


class HiddenLayers(nn.Module):
    """Step 1's result as one module, the unit its cache stores: a ``ContentVAE``'s hidden
    layers and tied decoder biases (the VAE's own parameters, shared) and the codes of the last
    hidden layer that step 2 trains on."""

    def __init__(self, vae, n):
        super().__init__()
        if not vae.n_hidden or not vae.tied:
            raise ValueError("layer-wise pretraining needs a ContentVAE with tied hidden layers")
        self.act, self.linears, self.dec_biases = vae.act, vae.encoder.linears, vae.dec_biases
        self.register_buffer("codes", torch.zeros(n, vae.encoder.linears[-1].out_features))

    def pretrain(self, rows, epochs, lr, batch_size, noise=0.3, seed=0, report=no_report):
        """Step 1 above. ``rows(idx)``: content rows in [0, 1] (dense or sparse) of items
        ``idx`` (0..n-1)."""
        # sigmoid codes are in [0, 1]: cross-entropy at every layer (the authors' schedule)
        dec_biases, codes = pretrain_dae_stack(
            self.linears,
            rows,
            len(self.codes),
            self.act,
            epochs,
            lr,
            batch_size,
            noise,
            seed,
            recon=("bce",),
            report=report,
        )
        with torch.no_grad():
            for i, dec_bias in enumerate(dec_biases):
                self.dec_biases[len(self.dec_biases) - 1 - i].copy_(dec_bias)
            self.codes.copy_(codes)

    def draw_as_trained(self):
        """What ``pretrain`` draws from torch's global RNG, for a result loaded from the cache."""
        draw_dae_stack_as_trained(self.linears)


def pretrain_latent_layer(vae, codes, epochs, lr, batch_size, seed=0, report=no_report):
    """Step 2 above, written into ``vae``: its Gaussian latent layer trained on the last hidden
    layer's ``codes`` (``HiddenLayers.codes``)."""
    mu, logvar, out = train_latent_layer(
        codes, vae.latent_dim, epochs, lr, batch_size, seed + 100, report
    )
    with torch.no_grad():
        for target, source in ((vae.mu, mu), (vae.logvar, logvar), (vae.latent_out, out)):
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)


PRETRAIN_CACHE_VERSION = 2  # bump when the pretraining code changes what it produces


def content_checksum(matrix):
    """sha1 of a scipy CSR matrix (shape, structure and values)."""
    digest = hashlib.sha1(str(matrix.shape).encode())
    for part in (matrix.indptr, matrix.indices, matrix.data):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


def cached_pretraining(module, cache_dir, key, run, prefix="pretrain"):
    """Train ``module`` in place with ``run()``, or load its weights if a run with the same
    ``key`` (a JSON-able dict: content checksum, architecture, every pretraining setting,
    seed) was cached in ``cache_dir`` (as ``<prefix>-<digest>.pth``). Content pretraining sees
    no interactions, so every split and protocol of a dataset shares it. Returns (path,
    loaded_from_cache)."""
    key = dict(key, version=PRETRAIN_CACHE_VERSION)
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
    path = os.path.join(cache_dir, f"{prefix}-{digest}.pth")
    if os.path.isfile(path):
        module.load_state_dict(torch.load(path, weights_only=True))
        return path, True
    run()
    os.makedirs(cache_dir, exist_ok=True)
    torch.save(module.state_dict(), path + ".tmp")
    os.replace(path + ".tmp", path)
    with open(path[:-4] + ".json", "w") as f:
        json.dump(key, f, indent=1, default=str)
    return path, False
