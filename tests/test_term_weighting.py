"""Term weighting of ContentKNN (model/term_weighting.py) against the formulas by hand."""

import numpy as np
import pytest
import scipy.sparse as sp

from recbole_hybrid.model.layers import tfidf_rows
from recbole_hybrid.model.term_weighting import TermWeighting

ROWS = sp.csr_matrix(
    np.array([[2, 1, 0, 0], [0, 1, 3, 0], [1, 1, 0, 4]], dtype=np.float32)
)  # df: 2, 3, 1, 1


def unit(row):
    row = np.asarray(row, dtype=np.float64)
    return row / np.linalg.norm(row)


def test_defaults_are_plain_tfidf():
    assert np.allclose(
        TermWeighting().fit(ROWS).transform(ROWS).toarray(), tfidf_rows(ROWS).toarray()
    )


def test_sublinear_smooth_and_document_frequency_bounds():
    weighting = TermWeighting(tf="sublinear", idf="smooth", max_df=0.9).fit(
        ROWS
    )  # word 1 in 3 of 3 items: cut
    idf = np.log(4 / np.array([3, 4, 2, 2])) + 1
    expected = unit(np.array([1 + np.log(2), 1, 0, 0]) * idf * [1, 0, 1, 1])
    assert np.allclose(weighting.transform(ROWS).toarray()[0], expected, atol=1e-6)
    rare = TermWeighting(min_df=2).fit(ROWS)  # words 2 and 3 in one item each: cut
    assert np.allclose(
        rare.transform(ROWS).toarray()[2], unit([1 * np.log(3 / 2), 0, 0, 0]), atol=1e-6
    )


def test_bm25_by_hand():
    k1, b = 1.2, 0.75
    weighting = TermWeighting(bm25_k1=k1, bm25_b=b).fit(ROWS)
    df, n, lengths = np.array([2, 3, 1, 1]), 3, np.array([3, 4, 6])
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    tf = ROWS.toarray()
    norm = k1 * (1 - b + b * lengths / lengths.mean())
    expected = tf * (k1 + 1) / (tf + norm[:, None]) * idf
    got = weighting.transform(ROWS).toarray()
    for i in range(3):
        assert np.allclose(got[i], unit(expected[i]), atol=1e-6)


def test_new_rows_use_the_training_weights():
    weighting = TermWeighting(max_df=0.9).fit(ROWS)
    new = sp.csr_matrix(np.array([[0, 5, 1, 0]], dtype=np.float32))  # word 1 cut in training
    assert np.allclose(weighting.transform(new).toarray(), [[0, 0, 1, 0]], atol=1e-6)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="tf_weight \\[log\\]"):
        TermWeighting(tf="log")
    with pytest.raises(ValueError, match="max_df 0"):
        TermWeighting(max_df=0)
