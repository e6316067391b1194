"""TopkCollector (recbole_hybrid/evaluator/collector.py) gives RecBole's ``rec.topk`` tensor and
RecBole's metrics, to the bit; other resources go through RecBole's code."""

import pytest
import torch
from recbole.evaluator.collector import Collector

from recbole_hybrid.config import Config
from recbole_hybrid.evaluator.collector import TopkCollector
from recbole_hybrid.quick_start import prepare

QUIET = {"state": "ERROR", "show_progress": False}

pytestmark = pytest.mark.usefixtures("in_tmp")


def collected(collector_class, config, scores, positive_u, positive_i):
    collector = collector_class(config)
    collector.eval_batch_collect(scores, None, positive_u, positive_i)
    return collector.data_struct


@pytest.mark.parametrize(
    "metrics", [["Recall", "NDCG", "Hit", "MRR", "Precision"], ["Recall", "ItemCoverage"]]
)
def test_same_resources_as_recboles_collector(metrics):
    settings = dict(QUIET, metrics=metrics, topk=[5, 20], valid_metric="recall@20")
    config = Config("MultiVAE", "ml-100k", config_dict=settings)
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(30, 50, generator=generator)
    scores[:, :3] = float("-inf")  # masked (history) items
    positive_u = torch.randint(0, 30, (200,), generator=generator)
    positive_i = torch.randint(0, 50, (200,), generator=generator)  # with repeated pairs
    ours = collected(TopkCollector, config, scores, positive_u, positive_i)
    recboles = collected(Collector, config, scores, positive_u, positive_i)
    assert ours._data_dict.keys() == recboles._data_dict.keys()
    for key, value in recboles._data_dict.items():
        assert ours.get(key).dtype == value.dtype and torch.equal(ours.get(key), value), key


def test_trainers_evaluate_with_it_and_get_recboles_metrics():
    config = Config("MultiVAE", "ml-100k", config_dict=dict(QUIET, topk=[10, 50]))
    _, (_, _, test), _, trainer = prepare(config)
    assert type(trainer.eval_collector) is TopkCollector
    ours = trainer.evaluate(test, load_best_model=False)
    trainer.eval_collector = Collector(config)
    assert trainer.evaluate(test, load_best_model=False) == ours
