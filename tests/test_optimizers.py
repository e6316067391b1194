"""Our trainers' Adam is torch's fused kernel, and steps as the unfused one does."""

import torch

from recbole_hybrid.optimizers import fused, model_parameters


def step(optimizer, params):
    optimizer.zero_grad()
    sum((p * torch.arange(1.0, p.numel() + 1).view_as(p)).pow(2).sum() for p in params).backward()
    optimizer.step()


def test_fused_adam_takes_the_unfused_steps():
    torch.manual_seed(0)
    start = [torch.randn(4, 3), torch.randn(5)]
    plain = [p.clone().requires_grad_() for p in start]
    lean = [p.clone().requires_grad_() for p in start]
    a = torch.optim.Adam(plain, lr=0.1, weight_decay=0.01)
    b = fused(torch.optim.Adam(lean, lr=0.1, weight_decay=0.01))
    assert b.defaults["fused"] and not a.defaults["fused"]
    assert (b.defaults["lr"], b.defaults["weight_decay"]) == (0.1, 0.01)
    for _ in range(5):
        step(a, plain)
        step(b, lean)
    for p, q in zip(plain, lean):
        assert torch.allclose(p, q, atol=1e-6)
    sgd = torch.optim.SGD(plain, lr=0.1)
    assert fused(sgd) is sgd  # other optimizers as they are


def test_a_transposed_weight_is_stepped_through_its_contiguous_transpose():
    torch.manual_seed(0)
    start = torch.randn(5, 3)
    plain = [start.clone().requires_grad_()]
    lean = [torch.nn.Parameter(start.t().contiguous().t())]  # layers.input_major_'s layout
    a = torch.optim.Adam(plain, lr=0.1, weight_decay=0.01)
    b = fused(torch.optim.Adam(lean, lr=0.1, weight_decay=0.01))
    (stepped,) = b.param_groups[0]["params"]
    assert stepped.is_contiguous() and stepped.data_ptr() == lean[0].data_ptr()
    assert model_parameters(b)[0] is lean[0]
    for _ in range(5):
        step(a, plain)
        step(b, lean)
        assert torch.allclose(plain[0], lean[0], atol=1e-6)
    assert lean[0].stride() == (1, 5)  # still the transpose of a contiguous matrix
    b.zero_grad()
    assert lean[0].grad is None and stepped.grad is None
