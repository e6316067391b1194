"""Every trainer of get_trainer times its epochs for hooks (recbole_hybrid/epoch_clock.py): what
the benchmarks read instead of patching a trainer's private methods."""

import pytest

from recbole_hybrid.config import Config
from recbole_hybrid.epoch_clock import EpochLog
from recbole_hybrid.quick_start import prepare

pytestmark = pytest.mark.usefixtures("in_tmp")


def test_fit_tells_the_hooks_of_each_training_epoch_and_validation():
    config = Config(
        "BPR",
        "ml-100k",
        config_dict={
            "epochs": 3,
            "eval_step": 2,
            "state": "ERROR",
            "show_progress": False,
            "metrics": ["Recall"],
            "topk": [10],
            "valid_metric": "recall@10",
        },
    )
    _, (train, valid, _), _, trainer = prepare(config)
    log, stages = EpochLog(), []
    trainer.epoch_hooks.extend(
        [log, lambda stage, epoch, seconds, output: stages.append((stage, epoch))]
    )
    best_score, _ = trainer.fit(train, valid, saved=False, show_progress=False)
    assert stages == [("train", 0), ("train", 1), ("valid", None), ("train", 2)]
    assert len(log.train_seconds) == 3 and all(s > 0 for s in log.train_seconds)
    assert [score for score, _ in log.valid_outputs] == [best_score]
