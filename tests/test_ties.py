"""Users whose candidates all score the same are counted, warned about and recorded."""

import logging

import torch
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.utils import InputType, ModelType

from recbole_hybrid.config import Config
from recbole_hybrid.data import create_dataset, data_preparation
from recbole_hybrid.evaluator.ties import tied_rows
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


def test_all_tied_users_recorded_and_warned(caplog):
    for protocol in ("recbole", "loo99"):
        assert "tied_users" not in evaluate(protocol, constant=False)
        with caplog.at_level(logging.WARNING):
            result = evaluate(protocol, constant=True)
        assert result["tied_users"] == 1.0
        assert "got the same score for every candidate item" in caplog.text
