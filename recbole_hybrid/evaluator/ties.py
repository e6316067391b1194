"""Users whose candidate items all get the same score: their top-k is the order in which ties
come out of the sort, not a ranking (EASE or ItemKNN with one training item per user, a model
collapsed to a constant). Every trainer ``get_trainer`` returns counts them while ranking;
when there are any, ``evaluate`` logs a warning and adds their share as ``tied_users`` to
its result (absent: none), which benchmark records keep and the results page flags.
"""

from logging import getLogger

import torch
from recbole.utils import EvaluatorType


def tied_rows(scores):
    """Rows of ``scores`` [users, items] whose finite entries (the candidates; masked items are
    -inf) are all equal, among rows with at least two candidates. A row whose two highest
    scores are finite and differ is not tied: only the others are checked entry by entry (one
    pass over the scores, instead of six, when ties are rare)."""
    tied = torch.zeros(len(scores), dtype=torch.bool, device=scores.device)
    if scores.shape[1] < 2:
        return tied
    top = scores.topk(2, dim=1).values  # NaN and +inf sort first: such rows are checked
    maybe = (top[:, 0] == top[:, 1]) | ~torch.isfinite(top[:, 0])
    if maybe.any():
        tied[maybe] = finite_entries_equal(scores[maybe])
    return tied


def finite_entries_equal(scores):
    """``tied_rows`` entry by entry."""
    finite = torch.isfinite(scores)
    high = scores.masked_fill(~finite, float("-inf")).max(1).values
    low = scores.masked_fill(~finite, float("inf")).min(1).values
    return (finite.sum(1) >= 2) & (high == low)


class TieCheck:
    """Mixed into a RecBole trainer: counts tied users in ``evaluate`` (module docstring)."""

    def _full_sort_batch_eval(self, batched_data):
        return self._count_ties(super()._full_sort_batch_eval(batched_data))

    def _neg_sample_batch_eval(self, batched_data):
        return self._count_ties(super()._neg_sample_batch_eval(batched_data))

    def _count_ties(self, batch):
        if self.config["eval_type"] == EvaluatorType.RANKING:
            rows = tied_rows(batch[1].view(-1, batch[1].shape[-1]).float())
            self._ties = (self._ties[0] + int(rows.sum()), self._ties[1] + len(rows))
        return batch

    def evaluate(self, eval_data, *args, **kwargs):
        self._ties = (0, 0)
        result = super().evaluate(eval_data, *args, **kwargs)
        tied, users = self._ties
        if result is not None and tied:
            result["tied_users"] = round(tied / users, 4)
            getLogger().warning(
                f"{tied} of {users} evaluated users ({tied / users:.1%}) got the same score for "
                "every candidate item: their metrics measure the order of ties, not a ranking"
            )
        return result
