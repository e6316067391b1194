"""Sparse user rows (model/user_rows.py): the b-step's loss, gradients and predictions equal
the dense path's (dropout off), for both encoder layouts (MDCVAE's own W_in, MDsymCVAE's V)."""

import pytest
import torch
from recbole.utils import init_seed

from recbole_hybrid.config import Config
from recbole_hybrid.model.user_rows import SparseRows
from recbole_hybrid.quick_start import prepare

SMALL = {
    "show_progress": False,
    "state": "ERROR",
    "epochs": 1,
    "latent_dimension": 16,
    "content_hidden_sizes": [16],
    "dropout_prob": 0.0,
}

pytestmark = pytest.mark.usefixtures("in_tmp")


def build(model, **overrides):
    config = Config(model, "ml-100k", config_dict=dict(SMALL, **overrides))
    init_seed(config["seed"], config["reproducibility"])
    _, _, model, _ = prepare(config)
    return model


def loss_and_grads(model, users, sparse):
    model.sparse_user_rows, model.update = sparse, 0
    model.zero_grad()
    torch.manual_seed(0)  # the same reparameterisation noise on both paths
    loss = sum(model.calculate_loss({model.USER_ID: users}))
    loss.backward()
    return loss.detach(), {
        n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
    }


@pytest.mark.slow
@pytest.mark.parametrize("name, hidden", [("MDCVAE", []), ("MDCVAE", [24]), ("MDsymCVAE", [])])
def test_sparse_rows_same_loss_gradients_and_scores_as_dense(name, hidden):
    model = build(name, mlp_hidden_size=hidden)
    model.train()
    model.z_t = torch.randn_like(model.z_t)
    users = torch.arange(1, 200)
    dense_loss, dense_grads = loss_and_grads(model, users, sparse=False)
    sparse_loss, sparse_grads = loss_and_grads(model, users, sparse=True)
    assert torch.allclose(dense_loss, sparse_loss, rtol=1e-5)
    assert dense_grads.keys() == sparse_grads.keys() and "V" in dense_grads
    for key in dense_grads:
        assert torch.allclose(dense_grads[key], sparse_grads[key], rtol=1e-4, atol=1e-6), key
    model.eval()
    batch = {model.USER_ID: users}
    with torch.no_grad():
        model.sparse_user_rows = False
        dense_scores = model.full_sort_predict(batch)
        model.sparse_user_rows = True
        assert torch.allclose(dense_scores, model.full_sort_predict(batch), rtol=1e-5, atol=1e-5)


def test_rows_normalise_drop_and_score_their_non_zeros():
    ids = torch.tensor([[3, 1, 0], [2, 0, 0], [0, 0, 0]])  # item 0 pads; the third user has none
    values = torch.tensor([[1.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    rows = SparseRows.from_history(ids, values, torch.tensor([0, 1, 2]))
    dense = rows.to_dense(4)
    assert torch.equal(dense, torch.tensor([[0, 2.0, 0, 1], [0, 0, 1, 0], [0, 0, 0, 0]]))
    assert torch.allclose(rows.normalized().to_dense(4), torch.nn.functional.normalize(dense))
    weight = torch.randn(4, 3)
    assert torch.allclose(rows.matmul(weight), dense @ weight)
    logits = torch.randn(3, 4)
    expected = (torch.log_softmax(logits, 1) * dense).sum(1)
    assert torch.allclose(rows.multinomial_log_likelihood(logits), expected, atol=1e-6)
    dropped = rows.dropout(0.5, training=True).values
    assert set(dropped.tolist()) <= {0.0, 2.0, 4.0}  # kept values scaled by 1 / (1 - p)
    same = SparseRows.from_dense(dense)
    assert torch.equal(same.items, rows.items) and torch.equal(
        same.offsets, rows.offsets
    )  # by item in a row
    first = rows.first_columns(3)
    assert torch.equal(first.to_dense(4), dense * torch.tensor([1.0, 1, 1, 0]))
    assert torch.allclose(first.matmul(weight[:3]), dense[:, :3] @ weight[:3])
