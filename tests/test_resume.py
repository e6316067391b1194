"""resume: True (recbole_hybrid/resume.py): a run stopped after some epochs and started again
goes on from its snapshot to the test result of an uninterrupted run; a snapshot of another
setting is not resumed; the snapshot is removed when the run is done."""

import logging

import pytest

from recbole_hybrid import resume
from recbole_hybrid.quick_start import run_recbole_hybrid
from recbole_hybrid.training_snapshot import TrainingSnapshot

RUN = {
    "epochs": 6,
    "eval_step": 1,
    "show_progress": False,
    "train_batch_size": 256,
    "metrics": ["Recall", "NDCG"],
    "topk": [10],
    "valid_metric": "ndcg@10",
}

pytestmark = pytest.mark.usefixtures("in_tmp")


class Stopped(Exception):
    """Stands for a kill after a snapshot."""


def stop_after_snapshot_of_epoch(monkeypatch, epoch):
    save = TrainingSnapshot.save

    def save_then_stop(self, epoch_idx, extra=None):
        save(self, epoch_idx, extra)
        if epoch_idx == epoch:
            raise Stopped

    monkeypatch.setattr(TrainingSnapshot, "save", save_then_stop)


def resume_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("resume:")]


@pytest.mark.slow
def test_a_stopped_run_goes_on_to_the_uninterrupted_result(monkeypatch, caplog):
    monkeypatch.setattr(resume, "RESUME_SECONDS", 0.0)
    straight = run_recbole_hybrid("MultiVAE", "ml-100k", config_dict=RUN)
    with monkeypatch.context() as stopping:
        stop_after_snapshot_of_epoch(stopping, 2)
        with pytest.raises(Stopped):
            run_recbole_hybrid("MultiVAE", "ml-100k", config_dict=dict(RUN, resume=True))
    path = resume.snapshot_path(
        {"checkpoint_dir": "saved", "model": "MultiVAE", "dataset": "ml-100k"}
    )
    assert path.is_file()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        resumed = run_recbole_hybrid("MultiVAE", "ml-100k", config_dict=dict(RUN, resume=True))
    assert resume_lines(caplog) == [f"resume: going on from {path}, at epoch 3"]
    assert resumed["best_valid_result"] == straight["best_valid_result"]
    assert resumed["test_result"] == straight["test_result"]
    assert not path.exists()  # done: removed


@pytest.mark.slow
def test_a_snapshot_of_another_setting_is_not_resumed(monkeypatch, caplog):
    monkeypatch.setattr(resume, "RESUME_SECONDS", 0.0)
    other = dict(RUN, learning_rate=0.01, resume=True)
    with monkeypatch.context() as stopping:
        stop_after_snapshot_of_epoch(stopping, 2)
        with pytest.raises(Stopped):
            run_recbole_hybrid("MultiVAE", "ml-100k", config_dict=other)
    straight = run_recbole_hybrid("MultiVAE", "ml-100k", config_dict=RUN)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        fresh = run_recbole_hybrid("MultiVAE", "ml-100k", config_dict=dict(RUN, resume=True))
    assert resume_lines(caplog) == [
        "resume: saved/MultiVAE-ml-100k.snapshot is of another setting, code or data: training "
        "from the start (it will be replaced)"
    ]
    assert fresh["test_result"] == straight["test_result"]


def test_resume_is_refused_for_a_distributed_run():
    config = {"single_spec": False}
    with pytest.raises(ValueError, match="cannot resume"):
        resume.resumable(config, None, None, logging.getLogger())
