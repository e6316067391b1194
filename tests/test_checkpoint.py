"""Checkpoints bound to their data (recbole_hybrid/checkpoint.py): recommend refuses a
checkpoint whose dataset changed (reordered rows, a rebuilt file) or whose bytes were damaged,
and names what changed; a missing or truncated file is one clear line."""

import shutil
from pathlib import Path

import pytest
import recbole

from recbole_hybrid.config import Config
from recbole_hybrid.quick_start import prepare
from recbole_hybrid.recommend import Recommender, main

ML100K = Path(recbole.__file__).parent / "dataset_example" / "ml-100k"
QUICK = {
    "show_progress": False,
    "state": "ERROR",
    "epochs": 1,
    "metrics": ["Recall"],
    "topk": [10],
    "valid_metric": "recall@10",
}


@pytest.fixture
def trained(tmp_path, in_tmp):
    """MultiVAE trained one epoch on a copy of ml-100k's interactions (RecBole reads ml-100k
    itself from its wheel only); returns (data dir, checkpoint path)."""
    data = tmp_path / "data" / "mlcopy"
    data.mkdir(parents=True)
    shutil.copy(ML100K / "ml-100k.inter", data / "mlcopy.inter")
    config = Config(
        "MultiVAE",
        "mlcopy",
        config_dict=dict(QUICK, data_path=str(data.parent), checkpoint_dir=str(tmp_path / "saved")),
    )
    _, (train, _, _), _, trainer = prepare(config)
    trainer.fit(train, None, saved=True)
    return data, Path(trainer.saved_model_file)


def test_unchanged_data_loads(trained):
    _, checkpoint = trained
    assert len(Recommender.from_checkpoint(str(checkpoint)).recommend(users=["1"], k=3)) == 3


def test_reordered_rows_are_refused(trained):
    data, checkpoint = trained
    inter = data / "mlcopy.inter"
    lines = inter.read_text().splitlines()
    inter.write_text("\n".join(lines[:1] + lines[:0:-1]) + "\n")  # the same rows, reversed
    with pytest.raises(ValueError, match=r"trained on other data: mlcopy.inter \(changed\)"):
        Recommender.from_checkpoint(str(checkpoint))


def test_renumbered_ids_are_counted(trained, monkeypatch):
    """Files identical but ids in another order (e.g. another reader): the count of moved ids."""
    from recbole_hybrid import checkpoint as module

    original = module.dataset_identity

    def shuffled(dataset):
        identity = original(dataset)
        identity["items"] = identity["items"][:1] + identity["items"][:0:-1]
        return identity

    monkeypatch.setattr("recbole_hybrid.recommend.loading.dataset_identity", shuffled)
    with pytest.raises(ValueError, match=r"\d+ of its 1682 items got other internal ids"):
        Recommender.from_checkpoint(str(trained[1]))


def test_flipped_bytes_missing_and_truncated_checkpoints(trained, tmp_path, capsys):
    _, checkpoint = trained
    raw = checkpoint.read_bytes()
    cases = []
    for share in (
        0.05,
        0.5,
        0.95,
    ):  # a few hundred bytes flipped: in the weights, the optimizer state...
        flipped = bytearray(raw)
        start = int(len(raw) * share)
        flipped[start : start + 300] = bytes(b ^ 0xFF for b in flipped[start : start + 300])
        cases.append((tmp_path / f"damaged-{share}.pth", bytes(flipped), r"damaged|cannot be read"))
    cases.append((tmp_path / "truncated.pth", raw[: len(raw) // 3], r"cannot be read: truncated"))
    for path, data, _ in cases:
        path.write_bytes(data)
    for path, message in [(p, m) for p, _, m in cases] + [(tmp_path / "none.pth", r"not found")]:
        with pytest.raises(SystemExit, match=rf"error: checkpoint .*{path.name}.* ({message})"):
            main(["--checkpoint", str(path), "--user", "1"])


def test_two_runs_started_in_the_same_second_save_to_their_own_files(tmp_path, in_tmp, monkeypatch):
    """RecBole names a checkpoint by model and time to the second: two processes of one model
    started in the same second (a suite's steps side by side) must not share the file that each
    saves, loads for its test and removes."""
    import os

    import recbole.trainer.trainer as recbole_trainer

    data = tmp_path / "data" / "mlcopy"
    data.mkdir(parents=True)
    shutil.copy(ML100K / "ml-100k.inter", data / "mlcopy.inter")
    config = Config("Pop", "mlcopy", config_dict=dict(QUICK, data_path=str(data.parent)))
    monkeypatch.setattr(recbole_trainer, "get_local_time", lambda: "Dec-07-2026_23-21-55")
    files = set()
    for pid in (4321, 4322):
        monkeypatch.setattr(os, "getpid", lambda pid=pid: pid)
        files.add(prepare(config)[3].saved_model_file)
    assert len(files) == 2
    assert all(Path(f).name.startswith("Pop-Dec-07-2026_23-21-55-") for f in files)
