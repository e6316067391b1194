"""Adam as torch's fused kernel where the parameters allow it (CPU and CUDA floats): one pass
over each parameter per step instead of one per operation, the same update up to float
rounding. Used by this package's trainers and pretraining loops; RecBole's models keep
RecBole's optimizer."""

import torch

ADAMS = (torch.optim.Adam, torch.optim.AdamW)


def adam(params, lr, weight_decay=0.0, kind=torch.optim.Adam):
    params = list(params)
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return kind(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def fused(optimizer):
    """RecBole's Adam / AdamW (one parameter group, no steps taken) as the fused kernel;
    another optimizer as it is."""
    if type(optimizer) not in ADAMS or len(optimizer.param_groups) != 1:
        return optimizer
    (group,) = optimizer.param_groups
    return adam(group["params"], group["lr"], group["weight_decay"], type(optimizer))
