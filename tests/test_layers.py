"""Shared blocks: the content VAE gives the same loss and gradients on sparse and dense input."""

import pytest
import numpy as np
import scipy.sparse as sp
import torch

from recbole_hybrid.model.layers import ContentVAE, csr_rows_sparse, l2_weights
from recbole_hybrid.model.layers import mask_noise
from recbole_hybrid.model.pretrain import pretrain_dae_stack, reconstruction_loss


def test_content_vae_sparse_input_matches_dense():
    X = sp.random(40, 300, density=0.05, format="csr", dtype=np.float32, random_state=0)
    torch.manual_seed(0)
    vae = ContentVAE(300, [20, 10], 5).eval()
    sparse_x, dense_x = csr_rows_sparse(X, np.arange(40)), torch.from_numpy(X.toarray())
    assert sparse_x.is_sparse
    a, b = vae.loss(sparse_x)[0], vae.loss(dense_x)[0]
    assert torch.allclose(a, b)
    a.sum().backward()
    grad = vae.encoder.linears[0].weight.grad.clone()
    vae.zero_grad()
    b.sum().backward()
    assert torch.allclose(grad, vae.encoder.linears[0].weight.grad, atol=1e-5)


def test_mask_noise_on_sparse_rows_drops_stored_values_only():
    X = sp.random(200, 500, density=0.05, format="csr", dtype=np.float32, random_state=1)
    x = csr_rows_sparse(X, np.arange(200))
    noisy = mask_noise(x, 0.3, torch.Generator().manual_seed(0)).to_dense()
    kept = (noisy != 0).sum().item() / X.nnz
    assert 0.65 < kept < 0.75
    assert torch.all((noisy == 0) | (noisy == x.to_dense()))  # values kept unchanged or zeroed


def test_stacked_dae_pretraining_learns_each_layer():
    """Each layer of the stack is trained as a denoising autoencoder on the codes below it
    (cross-entropy on [0, 1] input, squared error on tanh codes): its reconstruction error
    falls below that of the random layer it started from."""
    X = sp.random(300, 120, density=0.08, format="csr", dtype=np.float32, random_state=2)
    X.data[:] = 1.0
    rows = lambda idx: csr_rows_sparse(X, idx)
    torch.manual_seed(0)
    linears = torch.nn.ModuleList([torch.nn.Linear(120, 32), torch.nn.Linear(32, 16)])
    before = [layer.weight.detach().clone() for layer in linears]
    dec_biases, codes = pretrain_dae_stack(
        linears,
        rows,
        300,
        torch.nn.Tanh(),
        epochs=30,
        lr=0.01,
        batch_size=64,
        noise=0.2,
        seed=0,
        recon=("bce", "mse"),
    )
    assert all(not torch.equal(b, layer.weight) for b, layer in zip(before, linears))
    assert codes.shape == (300, 16) and len(dec_biases) == 2

    def error(layer, dec_bias, x, kind):
        with torch.no_grad():
            out = torch.nn.functional.linear(torch.tanh(layer(x)), layer.weight.t(), dec_bias)
            return reconstruction_loss(kind, out, x, torch.tanh).mean().item()

    x = torch.from_numpy(X.toarray())
    fresh = torch.nn.Linear(120, 32)
    assert error(linears[0], dec_biases[0], x, "bce") < 0.8 * error(
        fresh, torch.zeros(120), x, "bce"
    )
    h = torch.tanh(linears[0](x)).detach()
    fresh = torch.nn.Linear(32, 16)
    assert error(linears[1], dec_biases[1], h, "mse") < 0.8 * error(
        fresh, torch.zeros(32), h, "mse"
    )


def test_l2_weights_matches_the_squared_norm_and_its_gradient():
    ws = [torch.randn(3, 4, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    ws.append(torch.randn(5, dtype=torch.float64).requires_grad_())
    got = l2_weights(ws) * 3.0
    got.backward()
    assert got.item() == pytest.approx(3.0 * sum((w.detach() ** 2).sum().item() for w in ws) / 2)
    for w in ws:
        assert torch.allclose(w.grad, 3.0 * w.detach())
    assert l2_weights([]) == 0.0
