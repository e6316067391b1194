"""Metrics RecBole lacks."""

import numpy as np
from recbole.evaluator.base_metric import TopkMetric


class TRecall(TopkMetric):
    r"""Truncated recall (Multi-VAE, MD-CVAE): hits in the top K over min(K, |R(u)|).

    .. math::

        \mathrm{TRecall@K} = \frac{1}{|U|}\sum_u \frac{|\hat R_K(u) \cap R(u)|}{\min(K, |R(u)|)}
    """

    def calculate_metric(self, dataobject):
        pos_index, pos_len = self.used_info(dataobject)
        return self.topk_result("trecall", self.metric_info(pos_index, pos_len))

    def metric_info(self, pos_index, pos_len):
        ranks = np.arange(1, pos_index.shape[1] + 1)
        return np.cumsum(pos_index, axis=1) / np.minimum(ranks, pos_len.reshape(-1, 1))
