"""One gradient node for the weight that a tied autoencoder's first and last layers share.

The weight W [hidden, words] is kept input-major (``layers.input_major_``: W^T [words, hidden]
is contiguous). The encoder reads the rows of W^T that a sparse bag-of-words selects; the
decoder reads W^T whole (logits = h W); the weight decay adds lambda_W / 2 ||W||^2. Left to
autograd, W's gradient is the sum of three W-sized tensors: the encoder's (zero-filled, then
its rows added), the decoder's and the decay's (lambda_W W), added one by one.

``shared_weight`` gives both layers their view of W^T through one node that receives the three
parts together: the encoder's arrives sparse (only the selected rows), and the node adds it
and the decay term into the decoder's gradient in place: the same gradient without the
zero-filled encoder gradient and the W-sized sums (tests/test_shared_weight.py).
"""

import torch


class _SharedWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, with_norm):
        ctx.save_for_backward(weight)
        ctx.with_norm = with_norm
        norm = torch.linalg.vector_norm(weight).square() / 2 if with_norm else weight.new_zeros(())
        return weight.t(), weight.t(), norm

    @staticmethod
    def backward(ctx, grad_encoder, grad_decoder, grad_norm):
        (weight,) = ctx.saved_tensors
        rows = weight.t()
        # the decoder's weight gradient is a fresh matrix product; anything else is copied
        grad = grad_decoder.contiguous()
        if grad_encoder.is_sparse:
            grad.index_add_(0, grad_encoder._indices()[0], grad_encoder._values())
        else:
            grad += grad_encoder
        if ctx.with_norm:
            grad.add_(rows, alpha=float(grad_norm))
        return grad.t(), None


def shared_weight(weight, with_norm=False):
    """(encoder view, decoder view, ||W||^2 / 2 or 0) of a weight W [out, in]: both views are
    W^T [in, out]. Feed the encoder's view to ``F.embedding_bag(..., sparse=True)`` (or any
    op), the decoder's to ``F.linear(h, view)``."""
    return _SharedWeight.apply(weight, with_norm)
