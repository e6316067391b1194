"""Exact resume (recbole_hybrid/training_snapshot.py): for every trainer, 4 epochs straight
and 2 epochs, an interruption, a rebuilt trainer restoring the snapshot and the 2 remaining
epochs end with the same weights, losses and validation results, to the bit."""

import pytest
import torch

from recbole.utils import init_seed

from recbole_hybrid.config import Config
from recbole_hybrid.quick_start import prepare
from recbole_hybrid.training_snapshot import TrainingSnapshot, code_text

from test_deamer import SMALL as DEAMER_SMALL
from test_lrmm import SMALL as LRMM_SMALL

COMMON = {
    "show_progress": False,
    "state": "ERROR",
    "epochs": 4,
    "eval_step": 1,
    "metrics": ["Recall", "NDCG"],
    "topk": [10],
    "valid_metric": "ndcg@10",
}
CONTENT_VAE = {
    "pretrain_epochs": 1,
    "pretrain_layer_epochs": 1,
    "pretrain_latent_epochs": 1,
    "pretrain_cache": False,
    "latent_dimension": 16,
    "content_hidden_sizes": [16],
    "train_batch_size": 256,
    "content_batch_size": 512,
}
CASES = {  # model: (dataset, settings); each trainer of the package, and RecBole's
    "MultiVAE": ("ml-100k", {"train_batch_size": 256}),
    "BPR": ("ml-100k", {"train_batch_size": 2048}),  # negative sampling draws from numpy
    "MDCVAE": ("ml-100k", CONTENT_VAE),
    "MDsymCVAE": ("ml-100k", CONTENT_VAE),
    "CVAE": ("ml-100k", dict(CONTENT_VAE, content_field="class")),
    "DualNet": (
        "ml-100k",
        {
            "hidden_sizes": [16, 8],
            "train_batch_size": 256,
            "item_batch_size": 512,
            "pretrain_layer_epochs": 1,
            "pretrain_refine_epochs": 1,
            "pretrain_cache": False,
        },
    ),
    "DEAMER": ("amazon-mi", dict(DEAMER_SMALL, epochs=4)),
    "LRMM": ("amazon-mi", dict(LRMM_SMALL, epochs=4, metrics=["RMSE"], valid_metric="rmse")),
}
RAW_DATA = {"amazon-mi"}  # datasets converted from ../shared/data

pytestmark = pytest.mark.usefixtures("in_tmp")


class Interrupted(Exception):
    pass


def train(model, dataset, settings, path, stop_after=None, resume=False):
    """The trainer after ``fit`` (4 epochs, a snapshot after each); ``stop_after``: interrupted
    after that epoch's snapshot (returns None); ``resume``: restores the snapshot first."""
    config = Config(model, dataset, config_dict=dict(COMMON, **settings))
    init_seed(config["seed"], config["reproducibility"])
    _, (train_data, valid_data, _), _, trainer = prepare(config)
    snapshot = TrainingSnapshot(trainer, train_data, path, identity={"model": model})
    if resume:
        assert snapshot.restore(snapshot.stored()) == {"epochs": 2}
    save = snapshot.saver(lambda: {"epochs": len(trainer.train_loss_dict)})

    def callback(epoch_idx, valid_score):
        save(epoch_idx, valid_score)
        if epoch_idx == stop_after:
            raise Interrupted

    try:
        trainer.fit(train_data, valid_data, saved=True, callback_fn=callback)
    except Interrupted:
        return None
    return trainer


def assert_same_training(a, b):
    assert a.train_loss_dict == b.train_loss_dict
    assert a.best_valid_score == b.best_valid_score
    assert a.best_valid_result == b.best_valid_result
    wa, wb = a.model.state_dict(), b.model.state_dict()
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(CASES))
def test_resumed_training_equals_straight_training(model, tmp_path, request):
    dataset, settings = CASES[model]
    if dataset in RAW_DATA:
        request.getfixturevalue("raw_data_root")
    straight = train(model, dataset, settings, tmp_path / "straight.pth")
    assert len(straight.train_loss_dict) == 4
    path = tmp_path / "snapshot.pth"
    assert train(model, dataset, settings, path, stop_after=1) is None
    resumed = train(model, dataset, settings, path, resume=True)
    assert sorted(resumed.train_loss_dict) == [0, 1, 2, 3]
    assert_same_training(straight, resumed)


def test_a_snapshot_of_another_identity_is_not_resumed(tmp_path):
    dataset, settings = CASES["MultiVAE"]
    path = tmp_path / "snapshot.pth"
    train("MultiVAE", dataset, dict(settings, epochs=2), path, stop_after=0)
    config = Config("MultiVAE", dataset, config_dict=dict(COMMON, **settings))
    _, (train_data, _, _), _, trainer = prepare(config)
    assert TrainingSnapshot(trainer, train_data, path, {"model": "MultiVAE"}).stored()
    assert TrainingSnapshot(trainer, train_data, path, {"model": "other"}).stored() is None


def test_no_snapshot_after_the_last_epoch(tmp_path):
    dataset, settings = CASES["MultiVAE"]
    path = tmp_path / "snapshot.pth"
    train("MultiVAE", dataset, dict(settings, epochs=1), path)
    assert not path.exists()


def test_code_text_leaves_out_comments_and_docstrings(tmp_path):
    """A snapshot (or a search's trial log) survives an edit of comments or docstrings, not of
    code or settings."""

    def text(name, content):
        path = tmp_path / name
        path.write_text(content)
        return code_text(path)

    module = text(
        "m.py",
        '"""Doc."""\n\n\nclass A:\n    """Doc."""\n\n'
        '    def f(self, x):\n        """Doc."""\n        return x + 1  # one\n',
    )
    assert module == text(
        "m.py", '"""Other."""\n# new\n\nclass A:\n    def f(self, x):\n        return x + 1\n'
    )
    assert module != text("m.py", "class A:\n    def f(self, x):\n        return x + 2\n")
    settings = text("a.yaml", "lr: 0.001   # the rate\nepochs: 5\n")
    assert settings == text("a.yaml", "# settings\nepochs: 5\nlr: 1.0e-3\n")
    assert settings != text("a.yaml", "lr: 0.01\nepochs: 5\n")
    space = text("a.hyper", "# space\nlr choice [0.1, 0.01]\n")
    assert space == text("a.hyper", "lr choice [0.1, 0.01]   # rates\n\n")
    assert space != text("a.hyper", "lr choice [0.1]\n")
