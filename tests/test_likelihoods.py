"""The sparse-target likelihoods (model/likelihoods.py) against torch's dense forms."""

import pytest
import torch
import torch.nn.functional as F

from recbole_hybrid.model.likelihoods import SOFTPLUS_ROWS, bernoulli_nll, multinomial_nll


def batch(seed=0, n_rows=6):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n_rows, 40, generator=g, dtype=torch.float64) * 5).requires_grad_()
    x = torch.rand(n_rows, 40, generator=g, dtype=torch.float64)
    x = x * (torch.rand(n_rows, 40, generator=g, dtype=torch.float64) < 0.2)  # sparse, in [0, 1]
    x[2] = 0  # an empty row
    return logits, x


@pytest.mark.parametrize("n_rows", [6, 2 * SOFTPLUS_ROWS + 5])  # one part, and several
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (bernoulli_nll, lambda y, x: F.binary_cross_entropy_with_logits(y, x, reduction="none")),
        (multinomial_nll, lambda y, x: -(F.log_softmax(y, 1) * x)),
    ],
)
def test_sparse_target_matches_the_dense_form_and_its_gradient(ours, theirs, n_rows):
    logits, x = batch(n_rows=n_rows)
    # a non-uniform upstream gradient
    weights = torch.arange(1.0, n_rows + 1.0, dtype=torch.float64)
    expected = theirs(logits, x).sum(1)
    (grad_expected,) = torch.autograd.grad((expected * weights).sum(), logits)
    got = ours(logits, x.to_sparse())
    (grad_got,) = torch.autograd.grad((got * weights).sum(), logits)
    assert torch.allclose(got, expected, atol=1e-10)
    assert torch.allclose(grad_got, grad_expected, atol=1e-10)
    assert torch.allclose(ours(logits, x), expected)  # a dense target takes torch's form


def test_bernoulli_on_large_logits_stays_finite():
    logits = torch.tensor([[80.0, -80.0, 0.0]], requires_grad=True)
    x = torch.tensor([[1.0, 0.0, 0.5]]).to_sparse()
    nll = bernoulli_nll(logits, x)
    nll.sum().backward()
    assert torch.isfinite(nll).all() and torch.isfinite(logits.grad).all()
    assert nll.item() == pytest.approx(F.softplus(torch.tensor(0.0)).item(), rel=1e-5)


def test_multinomial_backward_twice_raises_instead_of_reading_the_scaled_softmax():
    """The backward scales the saved softmax in place: a second backward through the same graph
    must fail loudly."""
    logits = torch.randn(3, 6, requires_grad=True)
    x = torch.zeros(3, 6)
    x[0, 1], x[2, 4] = 1.0, 2.0
    loss = multinomial_nll(logits, x.to_sparse()).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="inplace"):
        loss.backward()
