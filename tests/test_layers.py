"""Shared blocks: the content VAE gives the same loss and gradients on sparse and dense input."""
import numpy as np
import scipy.sparse as sp
import torch

from recbole_hybrid.model.layers import ContentVAE, csr_rows_sparse
from recbole_hybrid.model.layers import mask_noise


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
