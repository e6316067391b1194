"""Long stages report progress: a line when a stage starts, at most one per interval, one at its
end."""

import pytest

from recbole_hybrid.progress import ProgressLog


def test_progress_lines_are_spaced_and_estimate_the_time_left():
    lines, now = [], [0.0]
    report = ProgressLog(interval=10, log=lines.append, clock=lambda: now[0])
    report("whole VAE", 0, 100)
    for epoch in range(1, 101):
        now[0] = epoch * 2.0  # 2 s per epoch
        report("whole VAE", epoch, 100, loss=1.0 / epoch)
    assert lines[0] == "whole VAE: 100 epochs"
    assert lines[1] == "whole VAE: epoch 5/100, loss 0.2, 10 s, about 190 s left"
    assert lines[-1] == "whole VAE: epoch 100/100, loss 0.01, 200 s, done"
    assert len(lines) == 1 + 20  # every 10 s, the last one included


@pytest.mark.slow
def test_content_pretraining_reports_each_stage(tmp_path, monkeypatch, caplog):
    import logging

    from recbole.utils import init_seed

    from recbole_hybrid.config import Config
    from recbole_hybrid.quick_start import prepare

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["pytest"])
    config = Config(
        "MDCVAE",
        "ml-100k",
        config_dict={
            "state": "INFO",
            "show_progress": False,
            "progress_interval": 0,
            "pretrain_layer_epochs": 2,
            "pretrain_latent_epochs": 2,
            "pretrain_epochs": 2,
            "latent_dimension": 8,
            "content_hidden_sizes": [8],
            "checkpoint_dir": str(tmp_path / "saved"),
        },
    )
    init_seed(config["seed"], True)
    _, _, _, trainer = prepare(config)
    with caplog.at_level(logging.INFO):
        trainer.pretrain()
    for stage in (
        "denoising autoencoder layer 1/1: epoch 2/2",
        "latent layer: epoch 2/2",
        "content VAE pretraining: epoch 2/2",
        "content VAE pretraining saved in",
    ):
        assert stage in caplog.text, stage
    _, _, _, again = prepare(config)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again.pretrain()
    assert "content VAE pretraining reused from the cache" in caplog.text


def test_doc2vec_and_large_inverses_report_progress(monkeypatch, caplog):
    import logging

    import numpy as np

    from dataset_atomic.text import train_doc2vec
    from recbole_hybrid import compat

    calls = []
    train_doc2vec(
        [["a", "b", "c"], ["b", "c", "d"]] * 5,
        dim=4,
        epochs=3,
        min_count=1,
        window=2,
        seed=0,
        report=lambda stage, done, total, loss=None: calls.append((stage, done, total)),
    )
    assert calls == [("Doc2Vec", 0, 3), ("Doc2Vec", 1, 3), ("Doc2Vec", 2, 3), ("Doc2Vec", 3, 3)]
    monkeypatch.setattr(compat, "LOGGED_INVERSE", 3)
    with caplog.at_level(logging.INFO):
        compat.spd_inverse(np.eye(3, dtype=np.float32) * 2)
    assert (
        "inverting the 3 x 3 Gram matrix" in caplog.text
        and "Cholesky factor in" in caplog.text
        and "inverted the 3 x 3 Gram matrix in" in caplog.text
    )


def test_heartbeat_logs_while_the_block_runs_and_stops_with_it():
    import threading
    import time

    from recbole_hybrid.progress import heartbeat

    lines = []
    with heartbeat(lambda seconds: f"still running, {seconds:.1f} s", 0.02, lines.append):
        time.sleep(0.3)
    beats = len(lines)
    assert beats >= 3 and lines[0].startswith("still running")
    with pytest.raises(KeyError), heartbeat(str, 0.02, lines.append):
        raise KeyError("the block failed")
    time.sleep(0.1)
    assert len(lines) <= beats + 1  # nothing once the block has ended
    assert not [t for t in threading.enumerate() if t.name == "heartbeat"]


def test_a_long_inverse_says_which_step_it_is_in(monkeypatch, caplog):
    import logging
    import time

    import numpy as np
    import torch

    from recbole_hybrid import compat, progress

    slow_inverse = torch.cholesky_inverse

    def slow(factor):
        time.sleep(0.3)
        return slow_inverse(factor)

    monkeypatch.setattr(compat, "LOGGED_INVERSE", 3)
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(compat.torch, "cholesky_inverse", slow)
    with caplog.at_level(logging.INFO):
        inverse = compat.spd_inverse(np.eye(3, dtype=np.float32) * 2)
    assert np.allclose(inverse, np.eye(3) / 2)
    assert "inverting the 3 x 3 Gram matrix: inverting the factor" in caplog.text
