"""Our trainers' Adam is torch's fused kernel, and steps as the unfused one does."""

import torch

from recbole_hybrid.optimizers import fused


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
