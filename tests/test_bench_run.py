"""The benchmark harness stores each finished process's result and, with --resume, reuses it."""
import json
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import run  # noqa: E402
import run_one  # noqa: E402


def fake_runner(calls, recall):
    def fake_run(cmd, stdout, stderr, text):
        calls.append(json.loads(cmd[-1]))
        result = {"tests": {"test": {"recall@20": recall}}, "epoch_seconds": 1.0, "eval_seconds": 1.0,
                  "peak_mem_mb": 10, "epochs": 3, "best_epoch": 2, "seed": 2020, "valid_metrics": {}}
        return types.SimpleNamespace(returncode=0, stdout="RESULT_JSON " + json.dumps(result) + "\n")
    return fake_run


def test_resume_reuses_only_a_finished_process_with_the_same_spec(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(run, "code_version", lambda: "abc1234")
    monkeypatch.setattr(run.subprocess, "run", fake_runner(calls, 0.5))
    config = {"protocol": "fixed", "fixed_split": "P=1-random", "fixed_seed": 3}
    first = run.run_process("MultiVAE", "citeulike-t", config, tmp_path)
    assert len(calls) == 1 and first["commit"] == "abc1234"
    assert (tmp_path / (run.run_tag("MultiVAE", "citeulike-t", config) + ".json")).exists()

    monkeypatch.setattr(run.subprocess, "run", fake_runner(calls, 0.9))
    assert run.run_process("MultiVAE", "citeulike-t", config, tmp_path, resume=True) == first
    assert len(calls) == 1
    # another spec, or no --resume: the process runs again
    other = dict(config, epochs=5)
    assert run.run_process("MultiVAE", "citeulike-t", other, tmp_path, resume=True)["tests"]["test"]["recall@20"] == 0.9
    assert run.run_process("MultiVAE", "citeulike-t", config, tmp_path)["tests"]["test"]["recall@20"] == 0.9
    assert len(calls) == 3


def test_log_names_carry_the_seed_and_the_settings():
    specs = run.run_specs("LRMM", "amazon-mi", "rating", None, {}, [0, 1])
    specs += run.run_specs("LRMM", "amazon-mi", "rating", None, {"mdrop_prob": 0.25}, [0])
    tags = [run.run_tag("LRMM", "amazon-mi", spec) for spec in specs]
    assert len(set(tags)) == 3 and all(t.startswith("LRMM_amazon-mi_rating__") for t in tags)


def test_records_average_test_and_validation_over_seeds_and_name_every_commit():
    runs = [{"tests": {"test": {"rmse": r}}, "epoch_seconds": 1, "eval_seconds": 1, "peak_mem_mb": 1, "epochs": 1,
             "best_epoch": 1, "seed": s, "valid_metrics": {"rmse": v}, "commit": c}
            for r, v, s, c in [(0.8, 0.7, 0, "aaa"), (0.9, 0.8, 1, "bbb"), (1.0, 0.9, 2, "aaa")]]
    [record] = run.records_for("LRMM", "amazon-mi", "rating", None, runs, "cmd")
    assert record["metrics"] == {"rmse": 0.9} and record["valid_metrics"] == {"rmse": 0.8}
    assert [v["rmse"] for v in record["per_seed_valid"]] == [0.7, 0.8, 0.9] and record["seeds"] == [0, 1, 2]
    assert record["commit"] == "aaa, bbb"


def test_records_claim_no_validation_mean_when_a_seed_has_none():
    runs = [{"tests": {"test": {"rmse": 0.8}}, "epoch_seconds": 1, "eval_seconds": 1, "peak_mem_mb": 1, "epochs": 1,
             "best_epoch": 1, "seed": s, "valid_metrics": v, "commit": "aaa"}
            for s, v in [(0, {"rmse": 0.7}), (1, {})]]
    [record] = run.records_for("LRMM", "amazon-mi", "rating", None, runs, "cmd")
    assert record["valid_metrics"] == {} and "per_seed_valid" not in record


def test_best_epoch_is_the_checkpoint_recbole_keeps_on_a_tie():
    from recbole.utils import early_stopping
    scores = [0.30, 0.35, 0.33, 0.35, 0.34]
    best, step, saved = -1.0, 0, None
    for epoch, score in enumerate(scores, 1):
        best, step, _, update = early_stopping(score, best, step, max_step=10, bigger=True)
        saved = epoch if update else saved
    outputs = [(score, {}) for score in scores]
    assert run_one.best_epoch(outputs, {"valid_metric_bigger": True, "eval_step": 1}) == saved == 4
    assert run_one.best_epoch([(0.9, {}), (0.8, {}), (0.8, {})], {"valid_metric_bigger": False, "eval_step": 2}) == 6
