"""Adam as torch's fused kernel where the parameters allow it (CPU and CUDA floats): one pass
over each parameter per step instead of one per operation, the same update up to float
rounding. Used by this package's trainers and pretraining loops; RecBole's models keep
RecBole's optimizer.

The fused kernel copies a non-contiguous parameter (and its gradient and moments) to
contiguous memory and back at every step. A weight kept as the transpose of a contiguous
matrix (``layers.input_major_``) is therefore stepped through that contiguous transpose: the
optimizer holds a view ``p.detach().t()`` sharing p's memory, and its gradient is
``p.grad.t()``. ``model_parameters()`` gives the model's own tensors back."""

import torch


def transposed_contiguous(p):
    return p.dim() == 2 and not p.is_contiguous() and p.t().is_contiguous()


class _StepsTransposes:
    """An optimizer mixin: transposed weights are stepped through their contiguous views."""

    def __init__(self, params, **kwargs):
        self._model_params = list(params)
        self._views = [(p, p.detach().t()) for p in self._model_params if transposed_contiguous(p)]
        stepped = {id(p): view for p, view in self._views}
        super().__init__([stepped.get(id(p), p) for p in self._model_params], **kwargs)

    def model_parameters(self):
        return list(self._model_params)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for p, view in self._views:
            view.grad = None if p.grad is None else p.grad.t()
        super().step()
        return loss

    def zero_grad(self, set_to_none=True):
        super().zero_grad(set_to_none)
        for p, _ in self._views:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()


class FusedAdam(_StepsTransposes, torch.optim.Adam):
    pass


class FusedAdamW(_StepsTransposes, torch.optim.AdamW):
    pass


ADAMS = {torch.optim.Adam: FusedAdam, torch.optim.AdamW: FusedAdamW}


def adam(params, lr, weight_decay=0.0, kind=torch.optim.Adam):
    params = list(params)
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if not fused:
        return kind(params, lr=lr, weight_decay=weight_decay)
    return ADAMS[kind](params, lr=lr, weight_decay=weight_decay, fused=True)


def model_parameters(optimizer):
    """The model's tensors an optimizer steps (the transposes' owners, not the views)."""
    if isinstance(optimizer, _StepsTransposes):
        return optimizer.model_parameters()
    return [p for group in optimizer.param_groups for p in group["params"]]


def fused(optimizer):
    """RecBole's Adam / AdamW (one parameter group, no steps taken) as the fused kernel;
    another optimizer as it is."""
    if type(optimizer) not in ADAMS or len(optimizer.param_groups) != 1:
        return optimizer
    (group,) = optimizer.param_groups
    return adam(group["params"], group["lr"], group["weight_decay"], type(optimizer))
