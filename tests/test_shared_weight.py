"""The tied first layer's gradient through one node (model/shared_weight.py) is autograd's."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recbole_hybrid.model.layers import ContentVAE, csr_rows_sparse, gaussian_kl, l2_weights
from recbole_hybrid.model.shared_weight import shared_weight
from recbole_hybrid.model.user_rows import SparseRows


def plain_loss(vae, x, lambda_w):
    """The content loss written with each layer reading the weight itself (autograd sums)."""
    mu, logvar = vae.encode(x)
    logits = vae.decode(mu)  # eval: z = mu
    elbo = vae.nll(logits, x) + gaussian_kl(mu, logvar)
    return elbo.sum() + lambda_w * l2_weights(vae.weights())


def grads(vae, loss):
    vae.zero_grad(set_to_none=True)
    loss.backward()
    return {name: p.grad.clone() for name, p in vae.named_parameters()}


@pytest.mark.parametrize("sparse_input", [True, False])
@pytest.mark.parametrize("lambda_w", [0.0, 0.3])
def test_content_vae_gradients_match_autograds_own_sum(sparse_input, lambda_w):
    X = sp.random(30, 200, density=0.05, format="csr", dtype=np.float32, random_state=0)
    torch.manual_seed(0)
    vae = ContentVAE(200, [16, 8], 4).eval()
    x = csr_rows_sparse(X, np.arange(30)) if sparse_input else torch.from_numpy(X.toarray())
    logits, mu, logvar, decay = vae.penalized(x, lambda_w)
    ours = (vae.nll(logits, x) + gaussian_kl(mu, logvar)).sum() + decay
    expected = plain_loss(vae, x, lambda_w)
    assert torch.allclose(ours, expected, rtol=1e-5)
    got, want = grads(vae, ours), grads(vae, expected)
    assert got.keys() == want.keys()
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-5), name
    first = vae.encoder.linears[0].weight
    assert first.grad.t().is_contiguous()  # the parameter's own (input-major) layout


def test_shared_weight_adds_sparse_rows_decoder_and_decay_in_one_gradient():
    torch.manual_seed(1)
    weight = torch.randn(5, 12).t().contiguous().t().requires_grad_()  # [out 5, in 12]
    rows = SparseRows.from_entries(
        torch.tensor([0, 0, 1, 2]), torch.tensor([3, 7, 3, 11]), torch.rand(4), 3
    )
    h = torch.randn(3, 5)

    def total(enc, dec, half_norm):
        return (
            (rows.matmul(enc, sparse_grad=True) ** 2).sum() + F.linear(h, dec).sum() + 2 * half_norm
        )

    enc, dec, half_norm = shared_weight(weight, with_norm=True)
    total(enc, dec, half_norm).backward()
    got, weight.grad = weight.grad.clone(), None
    plain = weight.t()
    total(plain, plain, weight.pow(2).sum() / 2).backward()
    assert torch.allclose(got, weight.grad, atol=1e-6)
    assert not torch.equal(got, torch.zeros_like(got))
