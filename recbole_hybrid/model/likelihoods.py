"""Negative log-likelihoods of rows from logits, for sparse targets x (bag-of-words rows,
users' rating rows).

For a row of logits l and a target x that holds a few dozen non-zeros:

  bernoulli    -log p(x | l) = sum_w softplus(l_w) - sum_w x_w l_w        (x in [0, 1])
               gradient in l: sigmoid(l) - x
  multinomial  -log p(x | l) = (sum_w x_w) logsumexp(l) - sum_w x_w l_w
               gradient in l: (sum_w x_w) softmax(l) - x

The dense forms (BCE with logits, log-softmax times x) are the same sums; here x is never made
dense and each gradient is built in one pass over the row (the softmax kept from the forward
pass), instead of the many passes of autograd through the dense forms
(tests/test_likelihoods.py: same values and gradients).
"""

import torch
import torch.nn.functional as F


def sparse_parts(x):
    """(rows, columns, values) of a sparse COO matrix."""
    x = x.coalesce()
    rows, cols = x.indices()
    return rows, cols, x.values()


def row_sums(values, rows, n_rows):
    out = torch.zeros(n_rows, device=values.device, dtype=values.dtype)
    return out.index_add_(0, rows, values)


# rows per softplus temporary: a few MB that the allocator reuses, where a whole batch's
# [rows x vocabulary] buffer is fresh memory paged in at every batch
SOFTPLUS_ROWS = 64


class _BernoulliNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, rows, cols, values):
        ctx.save_for_backward(logits, rows, cols, values)
        # softplus(l) = log(e^l + e^0); torch's logaddexp is the faster kernel on CPU
        zero = logits.new_zeros(())
        softplus = [torch.logaddexp(part, zero).sum(1) for part in logits.split(SOFTPLUS_ROWS)]
        return torch.cat(softplus) - row_sums(logits[rows, cols] * values, rows, len(logits))

    @staticmethod
    def backward(ctx, grad):
        logits, rows, cols, values = ctx.saved_tensors
        g = torch.sigmoid(logits)
        g.index_put_((rows, cols), -values, accumulate=True)
        return g.mul_(grad.unsqueeze(1)), None, None, None


class _MultinomialNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, rows, cols, values):
        top = logits.amax(1, keepdim=True)
        shifted = (logits - top).exp_()  # softmax(l) * sums, kept for the gradient
        sums = shifted.sum(1)
        totals = row_sums(values, rows, len(logits))
        ctx.save_for_backward(shifted, sums, totals, rows, cols, values)
        lse = sums.log() + top.squeeze(1)
        return totals * lse - row_sums(logits[rows, cols] * values, rows, len(logits))

    @staticmethod
    def backward(ctx, grad):
        shifted, sums, totals, rows, cols, values = ctx.saved_tensors
        # in place: a second backward through this graph fails on the saved tensor's version
        g = shifted.mul_((grad * totals / sums).unsqueeze(1))
        g.index_put_((rows, cols), -values * grad[rows], accumulate=True)
        return g, None, None, None


def bernoulli_nll(logits, x):
    """-log p(x | logits) per row, Bernoulli over the columns; ``x`` dense or sparse."""
    if not x.is_sparse:
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    return _BernoulliNLL.apply(logits, *sparse_parts(x))


def multinomial_nll(logits, x):
    """-log p(x | logits) per row, multinomial over the columns; ``x`` dense or sparse."""
    if not x.is_sparse:
        return -(F.log_softmax(logits, 1) * x).sum(1)
    return _MultinomialNLL.apply(logits, *sparse_parts(x))


def multinomial_nll_parts(logits, rows, cols, values):
    """``multinomial_nll`` of the target with non-zeros ``values`` at (``rows``, ``cols``)."""
    return _MultinomialNLL.apply(logits, rows, cols, values)
