"""Users whose candidates all score the same are counted, warned about and recorded."""

import logging

import torch
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.utils import InputType, ModelType

from recbole_hybrid.config import Config
from recbole_hybrid.data import create_dataset, data_preparation
from recbole_hybrid.evaluator.ties import finite_entries_equal, tied_rows
from recbole_hybrid.utils import get_trainer

QUIET = {"state": "ERROR", "show_progress": False}


class Scores(GeneralRecommender):
    """Item j scores j, or (``constant``) every item 1."""

    input_type = InputType.POINTWISE
    constant = False

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def full_sort_predict(self, interaction):
        n = len(interaction[self.USER_ID])
        scores = (
            torch.ones(self.n_items)
            if self.constant
            else torch.arange(self.n_items, dtype=torch.float)
        )
        return scores.repeat(n)

    def predict(self, interaction):
        items = interaction[self.ITEM_ID].float()
        return torch.ones_like(items) if self.constant else items


def evaluate(protocol, constant):
    config = Config("MultiVAE", "ml-100k", config_dict=dict(QUIET, protocol=protocol))
    dataset = create_dataset(config)
    _, _, test = data_preparation(config, dataset)
    model = Scores(config, dataset)
    model.constant = constant
    trainer = get_trainer(ModelType.GENERAL, "Scores")(config, model)
    return trainer.evaluate(test, load_best_model=False)


def test_tied_rows_ignore_masked_items_and_single_candidates():
    inf = float("inf")
    scores = torch.tensor([[-inf, 1.0, 1.0, -inf], [-inf, 1.0, 2.0, 1.0], [-inf, 3.0, -inf, -inf]])
    assert tied_rows(scores).tolist() == [True, False, False]


def test_tied_rows_first_pass_agrees_with_checking_every_entry():
    """The top-2 pass only skips rows that cannot be tied: rows with ties at the top but not
    below, NaN, +inf, no or one candidate, a single column."""
    inf, nan = float("inf"), float("nan")
    generator = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 3, (200, 6), generator=generator).float()
    scores[torch.rand(200, 6, generator=generator) < 0.3] = -inf
    scores[:5] = 2.0  # tied
    scores[5] = torch.tensor([2.0, 1.0, 1.0, -inf, 1.0, 1.0])  # tied below the top: not tied
    scores[6] = torch.tensor([nan, 1.0, 1.0, -inf, 1.0, 1.0])  # tied among the finite ones
    scores[7] = torch.tensor([inf, 1.0, 2.0, -inf, 1.0, 1.0])
    scores[8], scores[9, 1:] = -inf, -inf
    expected = finite_entries_equal(scores)
    assert expected[:5].all() and expected[6] and not expected[5] and not expected[7:10].any()
    assert torch.equal(tied_rows(scores), expected)
    assert not tied_rows(scores[:, :1]).any()


def test_all_tied_users_recorded_and_warned(caplog):
    for protocol in ("recbole", "loo99"):
        assert "tied_users" not in evaluate(protocol, constant=False)
        with caplog.at_level(logging.WARNING):
            result = evaluate(protocol, constant=True)
        assert result["tied_users"] == 1.0
        assert "got the same score for every candidate item" in caplog.text
