"""Each compat patch is needed (the library really lacks it) and works."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import recbole_hybrid  # noqa: F401  (applies the patches)


def test_numpy_aliases():
    assert np.float is np.float64 and np.bool is np.bool_ and np.int is np.int_


def test_recbole_metrics_run_with_numpy_aliases():
    from recbole.evaluator.metrics import MRR

    pos = np.array([[False, True, False]])
    assert MRR.metric_info(MRR.__new__(MRR), pos)[0][-1] == 0.5


def test_torch_load_of_recbole_checkpoints(tmp_path):
    import recbole.trainer.trainer as recbole_trainer
    from recbole.utils import ModelType

    path = tmp_path / "ckpt.pth"
    torch.save({"config": {"MODEL_TYPE": ModelType.GENERAL}, "state_dict": {}}, path)
    assert recbole_trainer.torch.load(path)["config"]["MODEL_TYPE"] == ModelType.GENERAL
    assert recbole_trainer.torch.Tensor is torch.Tensor  # everything else is torch's
    assert torch.load is not recbole_trainer.torch.load  # global torch untouched


def test_scipy_dok_update():
    matrix = sp.dok_matrix((3, 3), dtype=np.float32)
    matrix._update({(0, 1): 1.0, (2, 2): 3.0})
    assert matrix.nnz == 2 and matrix.tocsr()[2, 2] == 3.0


def test_ray_not_imported():
    import recbole_hybrid.quick_start  # noqa: F401

    assert "ray" not in sys.modules and "recbole.quick_start" not in sys.modules


def test_list_of_tensors_index_still_means_a_tuple():
    # RecBole's MultiVAE/MultiDAE/RecVAE.predict index scores[[rows, cols]]; torch warns
    # that this will mean scores[tensor([rows, cols])]: this test catches the day it does
    scores = torch.arange(12.0).reshape(3, 4)
    rows, cols = torch.arange(3), torch.tensor([1, 2, 3])
    assert torch.equal(scores[[rows, cols]], scores[rows, cols])


def test_ease_inverts_by_cholesky_in_its_own_module_only():
    import recbole.model.general_recommender.ease as ease
    from recbole_hybrid.compat import spd_inverse

    assert ease.np.linalg.inv is spd_inverse
    assert ease.np.diag is np.diag and ease.np.float32 is np.float32  # the rest is numpy's
    assert np.linalg.inv is not spd_inverse  # global numpy untouched


def test_spd_inverse_matches_numpy_type_and_values():
    from recbole_hybrid.compat import spd_inverse

    rng = np.random.default_rng(0)
    x = (rng.random((200, 60)) < 0.1).astype(np.float32)
    gram = np.asmatrix(x.T @ x + 5.0 * np.eye(60, dtype=np.float32))  # EASE's G
    inverse = spd_inverse(gram)
    assert isinstance(inverse, np.matrix) and inverse.dtype == np.float32
    np.testing.assert_allclose(inverse, np.linalg.inv(gram), rtol=1e-4, atol=1e-6)
    # EASE's B = P / -diag(P) keeps its column-wise meaning with the np.matrix result
    b = inverse / (-np.diag(inverse))
    np.testing.assert_allclose(b[3, 7], -inverse[3, 7] / inverse[7, 7], rtol=1e-6)


@pytest.mark.parametrize("order", ["C", "F"])
def test_spd_inverse_is_c_ordered_whatever_the_input_layout(order):
    """scipy's sparse @ dense copies a dense operand that is not C-ordered at every product, so
    EASE's B must come out C-ordered (torch returns the inverse column-major)."""
    from recbole_hybrid.compat import spd_inverse

    rng = np.random.default_rng(1)
    x = rng.random((300, 80)).astype(np.float32)
    gram = np.array(x.T @ x + np.eye(80, dtype=np.float32), order=order)
    inverse = spd_inverse(gram)
    assert inverse.flags.c_contiguous
    np.testing.assert_allclose(inverse, np.linalg.inv(gram), rtol=1e-3, atol=1e-5)
    assert np.array_equal(inverse, inverse.T)


def test_spd_inverse_of_a_matrix_not_positive_definite_is_numpys():
    from recbole_hybrid.compat import spd_inverse

    indefinite = np.array([[0.0, 2.0], [2.0, 1.0]])
    np.testing.assert_allclose(spd_inverse(indefinite), np.linalg.inv(indefinite))
    assert type(spd_inverse(indefinite)) is np.ndarray
