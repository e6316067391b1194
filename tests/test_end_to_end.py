"""Runner end to end on ml-100k (ships in the RecBole wheel): RecBole's MultiVAE and our
ContentKNN through RecBole's Trainer and evaluator."""

import subprocess
import sys
from pathlib import Path

import pytest

from recbole_hybrid.quick_start import objective_function, run_recbole_hybrid

REPO = Path(__file__).resolve().parents[1]
QUICK = {"epochs": 2, "show_progress": False, "state": "ERROR", "train_batch_size": 4096}


pytestmark = pytest.mark.usefixtures("in_tmp")


@pytest.mark.slow
def test_multivae_through_runner_with_checkpoint():
    result = run_recbole_hybrid("MultiVAE", "ml-100k", config_dict=QUICK)
    assert 0 < result["test_result"]["recall@10"] < 1
    assert Path(result["saved_model_file"]).is_file()  # evaluate(load_best_model=True) read it back


@pytest.mark.slow
def test_same_seed_same_numbers():
    first = run_recbole_hybrid("MultiVAE", "ml-100k", config_dict=QUICK, saved=False)
    second = run_recbole_hybrid("MultiVAE", "ml-100k", config_dict=QUICK, saved=False)
    assert first["test_result"] == second["test_result"]


@pytest.mark.slow
def test_contentknn_uses_content():
    with_genres = run_recbole_hybrid("ContentKNN", "ml-100k", config_dict=QUICK, saved=False)
    titles = dict(QUICK, content_field="movie_title")
    with_titles = run_recbole_hybrid("ContentKNN", "ml-100k", config_dict=titles, saved=False)
    assert with_genres["test_result"]["recall@10"] > 0
    assert with_genres["test_result"] != with_titles["test_result"]


@pytest.mark.slow
@pytest.mark.parametrize("saved", [False, True])
def test_objective_function_for_hypertuning(tmp_path, saved):
    """A trial tests its best epoch and keeps no checkpoint (a search would write one each)."""
    result = objective_function(dict(QUICK, model="MultiVAE", dataset="ml-100k"), saved=saved)
    assert result["model"] == "MultiVAE" and "recall@10" in result["test_result"]
    assert result["valid_metric"] == "mrr@10"
    assert not list(tmp_path.rglob("*.pth"))


@pytest.mark.slow
def test_command_line_runner(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "run_recbole_hybrid.py"),
            "--model=ContentKNN",
            "--dataset=ml-100k",
            "--show_progress=False",
            "--topk=[5]",
            "--metrics=['Recall']",
            "--valid_metric=recall@5",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "test result" in out.stdout + out.stderr and "recall@5" in out.stdout + out.stderr


def test_mostpop_counts_training_interactions():
    from recbole_hybrid.config import Config
    from recbole_hybrid.quick_start import prepare

    config = Config("MostPop", "ml-100k", config_dict=dict(QUICK))
    _, (train, _, _), model, _ = prepare(config)
    items = train._dataset.inter_feat["item_id"].numpy()
    top = int(model.item_count.argmax())
    assert model.item_count[top] == (items == top).sum() > 300  # ml-100k's most rated movie
    assert model.item_count.sum() == len(items)
