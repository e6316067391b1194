"""Term weighting of bag-of-words rows for content similarity (ContentKNN): the usual
text-retrieval choices, fitted on the training items' content and applied to new items alike.

  tf       raw: the count | sublinear: 1 + log(count) | binary: 1
  idf      log: log(N / df) | smooth: log((1 + N) / (1 + df)) + 1 | none: 1
  min_df   words in fewer than min_df training items weigh 0 (a word no training item has
           weighs as one in a single item: it still lengthens a new item's row)
  max_df   words in more than this share of the items weigh 0 (stop words, as a share)
  bm25_k1  > 0: Okapi BM25 instead of tf x idf:
           tf' = tf (k1 + 1) / (tf + k1 (1 - b + b |d| / avgdl))
           with idf log(1 + (N - df + 0.5) / (df + 0.5)); ``bm25_b`` is b
Rows are then L2-normalised (cosine). The defaults (raw, log, 1, 1.0, no BM25) are plain TF-IDF.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recbole_hybrid.model.layers import l2_normalize_rows

TF_MODES = ("raw", "sublinear", "binary")
IDF_MODES = ("log", "smooth", "none")


@dataclass
class TermWeighting:
    tf: str = "raw"
    idf: str = "log"
    min_df: int = 1
    max_df: float = 1.0
    bm25_k1: float = 0.0
    bm25_b: float = 0.75

    def __post_init__(self):
        if self.tf not in TF_MODES or self.idf not in IDF_MODES:
            raise ValueError(
                f"tf_weight [{self.tf}] must be one of {TF_MODES}, "
                f"idf_weight [{self.idf}] one of {IDF_MODES}"
            )
        if (
            not 0 < self.max_df <= 1
            or self.min_df < 1
            or self.bm25_k1 < 0
            or not 0 <= self.bm25_b <= 1
        ):
            raise ValueError(
                "min_df >= 1, 0 < max_df <= 1, bm25_k1 >= 0 and 0 <= bm25_b <= 1 needed; "
                f"got min_df {self.min_df}, max_df {self.max_df}, bm25_k1 {self.bm25_k1}, "
                f"bm25_b {self.bm25_b}"
            )

    @classmethod
    def from_config(cls, config):
        return cls(
            config["tf_weight"],
            config["idf_weight"],
            config["min_df"],
            config["max_df"],
            config["bm25_k1"],
            config["bm25_b"],
        )

    def fit(self, rows):
        """Word weights (0 for pruned words) and the mean document length, from training rows."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        n_docs = max(int((rows.getnnz(axis=1) > 0).sum()), 1)
        df = np.bincount(rows.indices, minlength=rows.shape[1]).astype(np.float64)
        if self.bm25_k1:
            weights = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        elif self.idf == "log":
            weights = np.log(n_docs / np.maximum(df, 1))
        elif self.idf == "smooth":
            weights = np.log((1 + n_docs) / (1 + df)) + 1
        else:
            weights = np.ones_like(df)
        weights[((df > 0) & (df < self.min_df)) | (df > self.max_df * n_docs)] = (
            0  # unseen words: as df 1
        )
        self.word_weights = weights.astype(np.float32)
        self.avgdl = float(rows.sum() / n_docs)
        return self

    def transform(self, rows):
        """Weighted, L2-normalised CSR rows (new items: with the training weights)."""
        rows = sp.csr_matrix(rows, dtype=np.float32, copy=True)
        if self.bm25_k1:
            lengths = np.asarray(rows.sum(axis=1)).ravel()
            norm = self.bm25_k1 * (1 - self.bm25_b + self.bm25_b * lengths / max(self.avgdl, 1e-12))
            per_entry = np.repeat(norm, np.diff(rows.indptr))
            rows.data = rows.data * (self.bm25_k1 + 1) / (rows.data + per_entry)
        elif self.tf == "sublinear":
            rows.data = 1 + np.log(np.maximum(rows.data, 1e-12))
        elif self.tf == "binary":
            rows.data[:] = 1
        return sp.csr_matrix(l2_normalize_rows(rows @ sp.diags(self.word_weights)))
