"""The benchmark harness stores each finished process's result and, with --resume, reuses it."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import run  # noqa: E402
import run_one  # noqa: E402


def fake_runner(calls, recall):
    def fake_run(cmd, stdout, stderr, text, env):
        assert env["OMP_NUM_THREADS"] == os.environ.get("OMP_NUM_THREADS", "1")
        calls.append(json.loads(cmd[2]))  # python run_one.py SPEC --snapshot PATH
        result = {
            "tests": {"test": {"recall@20": recall}},
            "epoch_seconds": 1.0,
            "eval_seconds": 1.0,
            "peak_mem_mb": 10,
            "epochs": 3,
            "best_epoch": 2,
            "seed": 2020,
            "valid_metrics": {},
        }
        return types.SimpleNamespace(
            returncode=0, stdout="RESULT_JSON " + json.dumps(result) + "\n"
        )

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
    reused = run.run_process("MultiVAE", "citeulike-t", config, tmp_path, resume=True)
    assert reused == dict(first, reused=True)  # marked: tune.py's time left leaves it out
    assert len(calls) == 1
    # another spec, or no --resume: the process runs again
    other = dict(config, epochs=5)
    assert (
        run.run_process("MultiVAE", "citeulike-t", other, tmp_path, resume=True)["tests"]["test"][
            "recall@20"
        ]
        == 0.9
    )
    assert (
        run.run_process("MultiVAE", "citeulike-t", config, tmp_path)["tests"]["test"]["recall@20"]
        == 0.9
    )
    assert len(calls) == 3
    # a tuning trial's setting holds tuples (hyperopt's choices); its stored spec, lists
    trial = dict(config, mlp_hidden_size=(600,))
    run.run_process("MultiVAE", "citeulike-t", trial, tmp_path, test=False)
    assert run.run_process("MultiVAE", "citeulike-t", trial, tmp_path, resume=True, test=False)
    assert len(calls) == 4  # reused, not trained again


def test_a_snapshot_is_resumed_by_resume_only_and_removed_with_the_result(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "code_version", lambda: "abc1234")
    config = {"protocol": "strong"}
    tag = run.run_tag("MultiVAE", "citeulike-a", config)
    snapshot, log = tmp_path / f"{tag}.snapshot.pth", tmp_path / f"{tag}.log"
    seen = []

    def killed(cmd, stdout, stderr, text, env):  # trains a while, writes a snapshot, is killed
        assert cmd[3:] == ["--snapshot", str(snapshot)]
        seen.append(snapshot.exists())
        stderr.write("epoch 0\n")
        snapshot.write_text("state")
        return types.SimpleNamespace(returncode=-9, stdout="")

    monkeypatch.setattr(run.subprocess, "run", killed)
    for resume in (False, True):
        with pytest.raises(RuntimeError, match="exit -9"):
            run.run_process("MultiVAE", "citeulike-a", config, tmp_path, resume=resume)
    assert seen == [False, True] and snapshot.exists()  # the second went on from the first's
    assert log.read_text() == "epoch 0\nepoch 0\n"  # and its log from the first's
    with pytest.raises(RuntimeError):  # without --resume: from the start
        run.run_process("MultiVAE", "citeulike-a", config, tmp_path)
    assert seen[-1] is False and log.read_text() == "epoch 0\n"

    Path(f"{snapshot}.partial").write_text("half")  # killed while writing the next one
    monkeypatch.setattr(run.subprocess, "run", fake_runner([], 0.5))
    run.run_process("MultiVAE", "citeulike-a", config, tmp_path, resume=True)
    assert list(tmp_path.glob("*.pth*")) == []  # the result is stored: nothing left to resume


def test_a_process_another_command_is_running_waits_for_it_and_reuses_its_result(
    tmp_path, monkeypatch, capsys
):
    """Two commands sharing a process (a suite step and a rerun of its record) do not both run
    it: the second waits for the first's lock, then reuses the result it stored."""
    import threading

    calls = []
    monkeypatch.setattr(run, "code_version", lambda: "abc1234")
    monkeypatch.setattr(run.subprocess, "run", fake_runner(calls, 0.5))
    config = {"protocol": "strong"}
    tag = run.run_tag("MultiVAE", "citeulike-a", config)
    second = {}
    waiting = threading.Thread(
        target=lambda: second.update(
            run.run_process("MultiVAE", "citeulike-a", config, tmp_path, resume=True)
        )
    )
    with run.process_lock(tmp_path, tag):  # the first command, training
        waiting.start()
        waiting.join(timeout=1)
        assert waiting.is_alive() and calls == []
        stored = {"tests": {"test": {"recall@20": 0.7}}, "valid_metrics": {}, "commit": "f1"}
        spec = run.process_spec("MultiVAE", "citeulike-a", config)
        (tmp_path / f"{tag}.json").write_text(json.dumps({"spec": spec, "result": stored}))
    waiting.join(timeout=10)
    assert not waiting.is_alive()
    assert calls == [] and second == dict(stored, reused=True)
    assert f"WAITING: another command runs {tag}" in capsys.readouterr().out


@pytest.mark.usefixtures("in_tmp")
def test_an_interrupted_process_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    monkeypatch.setattr(run_one, "SNAPSHOT_SECONDS", 0)
    spec = {
        "model": "MultiVAE",
        "dataset": "ml-100k",
        "config": {"epochs": 4, "train_batch_size": 512, "state": "ERROR", "topk": [10]},
    }
    straight = run_one.run(spec)
    path = tmp_path / "snapshot.pth"
    save = run_one.TrainingSnapshot.save

    def save_then_die(self, epoch_idx, extra=None):
        save(self, epoch_idx, extra)
        if epoch_idx == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_one.TrainingSnapshot, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_one.run(spec, path)
    monkeypatch.setattr(run_one.TrainingSnapshot, "save", save)
    interrupted = path.read_bytes()
    resumed = run_one.run(spec, path)
    assert resumed["resumed_at_epochs"] == [2] and "resumed_at_epochs" not in straight
    for key in ("tests", "valid_metrics", "valid_score", "epochs", "best_epoch", "config"):
        assert resumed[key] == straight[key], key
    assert resumed["cpu_seconds"] > resumed["fit_seconds"] > 0

    # with other data, or another code, the same snapshot is not resumed
    build = run_one.build

    def other_data(spec):
        built = build(spec)
        built[2].data_identity["files"]["ml-100k.inter"] = "another sha256"
        return built

    for name, other in (("build", other_data), ("code_digest", lambda: "other code")):
        path.write_bytes(interrupted)
        with monkeypatch.context() as patch:
            patch.setattr(run_one, name, other)
            assert "resumed_at_epochs" not in run_one.run(spec, path)


def _save_one(out, i):
    record = {"model": f"M{i}", "dataset": "d", "protocol": "strong", "split": "", "metrics": {}}
    for _ in range(20):  # many read-merge-writes, side by side with the other processes
        run.update_records(
            out, lambda existing: [r for r in existing if r != record] + [record], str
        )


def test_steps_side_by_side_lose_no_records(tmp_path):
    """Suite steps running at once share a records file: each read-merge-write is locked and
    each file replaced whole, so every step's records are there at the end."""
    import multiprocessing

    out = tmp_path / "records.json"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_save_one, args=(out, i)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert sorted(r["model"] for r in json.loads(out.read_text())) == [f"M{i}" for i in range(6)]
    assert out.with_suffix(".md").read_text() == str(json.loads(out.read_text()))
    assert not list(tmp_path.glob("*.partial"))


def test_a_tuning_rerun_that_reused_every_trial_keeps_the_record_as_it_was(tmp_path):
    import tune

    out = tmp_path / "tuning.json"
    record = {"model": "EASE", "dataset": "d", "protocol": "strong", "trials": 2}
    record.update(chosen={"reg_weight": 1.0}, every_trial=[], space={}, algo="exhaustive")
    record.update(valid_score=0.3, valid_metric="ndcg@100", command="c", draw=0)
    record.update(space={"mlp_hidden_size": ([600], [300])})  # a tuple: a list once stored
    tune.save_tuning(dict(record, commit="aaa", date="2026-12-01"), out)
    tune.save_tuning(dict(record, commit="bbb", date="2026-12-07"), out)  # every trial reused
    assert [r["commit"] for r in json.loads(out.read_text())] == ["aaa"]
    tune.save_tuning(dict(record, trials=3, commit="bbb", date="2026-12-07"), out)  # a new trial
    assert [(r["commit"], r["trials"]) for r in json.loads(out.read_text())] == [("bbb", 3)]


def test_tuning_table_says_when_every_trial_scored_the_same():
    """EASE on P=1 (one training item per user: no co-occurrence, every score 0): a flat search
    chose nothing, and the table says so instead of showing a tuned setting alone."""
    import tune

    def record(model, scores):
        trials = [{"params": f"reg_weight:{i}", "valid_score": s} for i, s in enumerate(scores)]
        return dict(
            model=model,
            dataset="d",
            protocol="fixed",
            draw=0,
            algo="exhaustive",
            trials=len(scores),
            valid_metric="ndcg@100",
            chosen={"reg_weight": 0},
            valid_score=scores[0],
            every_trial=trials,
            command="c",
        )

    table = tune.tuning_table([record("EASE", [0.0, 0.0, 0.0]), record("CEASE", [0.1, 0.2])])
    notes = [line for line in table.splitlines() if line.startswith("- ")]
    assert notes == [
        "- EASE d fixed: every trial scored 0.0000: the searched settings make no difference here"
    ]


def test_a_draws_rerun_that_reused_every_process_keeps_the_record_as_it_was(tmp_path):
    out = tmp_path / "records.json"
    record = {"model": "EASE", "dataset": "d", "protocol": "strong", "split": "test"}
    record.update(metrics={"recall@20": 0.3}, split_seeds=(0, 1), command="c", epochs=3)
    record.update(epoch_seconds=1.0, eval_seconds=0.5, peak_mem_mb=100.0)
    run.save([dict(record, commit="aaa", date="2026-12-01")], out)
    run.save([dict(record, commit="bbb", date="2026-12-07")], out)  # every draw reused
    assert [r["date"] for r in json.loads(out.read_text())] == ["2026-12-01"]
    run.save([dict(record, metrics={"recall@20": 0.4}, commit="bbb", date="2026-12-07")], out)
    assert [r["metrics"] for r in json.loads(out.read_text())] == [{"recall@20": 0.4}]


def test_log_names_carry_the_seed_and_the_settings():
    specs = run.run_specs("LRMM", "amazon-mi", "rating", None, {}, [0, 1])
    specs += run.run_specs("LRMM", "amazon-mi", "rating", None, {"mdrop_prob": 0.25}, [0])
    tags = [run.run_tag("LRMM", "amazon-mi", spec) for spec in specs]
    assert len(set(tags)) == 3 and all(t.startswith("LRMM_amazon-mi_rating__") for t in tags)


def test_records_average_test_and_validation_over_seeds_and_name_every_commit():
    runs = [
        {
            "tests": {"test": {"rmse": r}},
            "epoch_seconds": 1,
            "eval_seconds": 1,
            "peak_mem_mb": 1,
            "epochs": 1,
            "best_epoch": 1,
            "seed": s,
            "valid_metrics": {"rmse": v},
            "commit": c,
        }
        for r, v, s, c in [(0.8, 0.7, 0, "aaa"), (0.9, 0.8, 1, "bbb"), (1.0, 0.9, 2, "aaa")]
    ]
    [record] = run.records_for("LRMM", "amazon-mi", "rating", None, runs, "cmd")
    assert record["metrics"] == {"rmse": 0.9} and record["valid_metrics"] == {"rmse": 0.8}
    assert [v["rmse"] for v in record["per_seed_valid"]] == [0.7, 0.8, 0.9] and record["seeds"] == [
        0,
        1,
        2,
    ]
    assert record["commit"] == "aaa, bbb"


def test_records_claim_no_validation_mean_when_a_seed_has_none():
    runs = [
        {
            "tests": {"test": {"rmse": 0.8}},
            "epoch_seconds": 1,
            "eval_seconds": 1,
            "peak_mem_mb": 1,
            "epochs": 1,
            "best_epoch": 1,
            "seed": s,
            "valid_metrics": v,
            "commit": "aaa",
        }
        for s, v in [(0, {"rmse": 0.7}), (1, {})]
    ]
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
    assert (
        run_one.best_epoch(
            [(0.9, {}), (0.8, {}), (0.8, {})], {"valid_metric_bigger": False, "eval_step": 2}
        )
        == 6
    )


def test_split_seeds_draw_the_split_and_the_model_seed():
    specs = run.run_specs(
        "EASE", "citeulike-a", "strong", None, {"reg_weight": 500}, split_seeds=[0, 3]
    )
    assert specs == [
        {"reg_weight": 500, "protocol": "strong", "split_seed": d, "seed": d} for d in (0, 3)
    ]
    fixed = run.run_specs("CVAE", "citeulike-a", "fixed", "P=1-random", {}, split_seeds=[1, 2])
    assert [s["fixed_seed"] for s in fixed] == [1, 2] and "split_seed" not in fixed[0]
    with pytest.raises(ValueError, match="one file, not a random draw"):
        run.run_specs("CVAE", "citeulike-a", "fixed", "P=1", {}, split_seeds=[0, 1])


def test_split_draw_records_hold_mean_std_se_and_each_draw():
    runs = [
        {
            "tests": {"test": {"recall@20": r}},
            "epoch_seconds": 1,
            "eval_seconds": 1,
            "peak_mem_mb": 1,
            "epochs": 1,
            "best_epoch": 1,
            "seed": s,
            "valid_metrics": {"recall@20": r / 2},
            "commit": "aaa",
        }
        for s, r in [(0, 0.2), (1, 0.3), (2, 0.4)]
    ]
    [record] = run.records_for(
        "EASE", "citeulike-a", "strong", None, runs, "cmd", split_seeds=[0, 1, 2]
    )
    assert record["split_seeds"] == [0, 1, 2] and "seeds" not in record
    assert record["metrics"] == {"recall@20": 0.3} and record["std"] == {"recall@20": 0.1}
    assert record["se"] == {"recall@20": round(0.1 / 3**0.5, 4)}
    assert [v["recall@20"] for v in record["per_seed"]] == [0.2, 0.3, 0.4]
    assert [v["recall@20"] for v in record["per_seed_valid"]] == [0.1, 0.15, 0.2]


def test_tuning_on_validation_then_every_draw_runs_the_chosen_setting(tmp_path, monkeypatch):
    """tune.py picks the trial with the best validation score (never scoring test); run.py --tuned
    runs that setting on each draw and stores the tuning in the record."""
    import tune

    calls = []

    def fake_run(cmd, stdout, stderr, text, env):
        spec = json.loads(cmd[2])
        calls.append(spec)
        reg = spec["config"].get("reg_weight", 0)
        result = {
            "tests": {} if spec.get("test") is False else {"test": {"recall@20": 0.3}},
            "valid_metrics": {"ndcg@100": 1 - abs(reg - 100) / 1000},
            "valid_score": 1 - abs(reg - 100) / 1000,
            "valid_metric": "ndcg@100",
            "valid_metric_bigger": True,
            "epoch_seconds": 1.0,
            "eval_seconds": 1.0,
            "peak_mem_mb": 10,
            "epochs": 1,
            "best_epoch": 1,
            "seed": spec["config"].get("seed"),
        }
        return types.SimpleNamespace(
            returncode=0, stdout="RESULT_JSON " + json.dumps(result) + "\n"
        )

    monkeypatch.setattr(run.subprocess, "run", fake_run)
    monkeypatch.setattr(run, "code_version", lambda: "abc1234")
    monkeypatch.setattr(tune, "code_version", lambda: "abc1234")
    monkeypatch.setattr(tune, "TRIAL_LOGS", tmp_path / "logs")
    space = tmp_path / "EASE.hyper"
    space.write_text("reg_weight choice [10.0, 100.0, 1000.0]\n")
    tuning, results = tmp_path / "tuning.json", tmp_path / "results.json"
    monkeypatch.setattr(
        "sys.argv",
        [
            "tune.py",
            "--model",
            "EASE",
            "--dataset",
            "toy",
            "--protocol",
            "strong",
            "--params-file",
            str(space),
            "--out",
            str(tuning),
        ],
    )
    tune.main()
    assert (
        all(c["test"] is False and c["config"]["split_seed"] == 0 for c in calls)
        and len(calls) == 3
    )
    [record] = json.loads(tuning.read_text())
    assert (
        record["chosen"] == {"reg_weight": 100.0}
        and record["trials"] == 3
        and record["valid_metric"] == "ndcg@100"
    )
    calls.clear()
    monkeypatch.setattr(
        "sys.argv",
        [
            "run.py",
            "--models",
            "EASE",
            "--datasets",
            "toy",
            "--protocols",
            "strong",
            "--split-seeds",
            "0",
            "1",
            "--tuned",
            str(tuning),
            "--out",
            str(results),
        ],
    )
    run.main()
    assert [(c["config"]["reg_weight"], c["config"]["split_seed"]) for c in calls] == [
        (100.0, 0),
        (100.0, 1),
    ]
    [stored] = json.loads(results.read_text())
    assert stored["tuning"]["chosen"] == {"reg_weight": 100.0} and stored["tuning"]["trials"] == 3
    with pytest.raises(SystemExit, match="tuned .* and also given with --set"):
        run.apply_tuning({}, record, {"reg_weight": 5})
    with pytest.raises(SystemExit, match="no-such.json: no such file"):
        run.load_tuned(str(tmp_path / "no-such.json"))


def test_a_searched_key_of_the_settings_file_is_left_to_the_search():
    import tune

    space = {"choice": {"item_reviews": [False, True]}}
    settings = {"ContentKNN": {"item_reviews": True, "k": 50}}
    config = tune.trial_config(settings, {}, "ContentKNN", "amazon-mi", space)
    assert config == {"k": 50}
    # given with --set it stays, and the search refuses it (hyper.check_fixed)
    pinned = tune.trial_config(settings, {"item_reviews": False}, "ContentKNN", "amazon-mi", space)
    assert pinned["item_reviews"] is False


def test_headline_suite_tunes_each_model_then_runs_every_draw():
    import suite
    import yaml

    spec = yaml.safe_load((REPO / "benchmarks" / "suites" / "headline.yaml").read_text())
    commands = suite.suite_commands(spec)
    runs = [c for c in commands if c[0] == "benchmarks/run.py"]
    tunes = [c for c in commands if c[0] == "benchmarks/tune.py"]
    assert all("--resume" in c for c in commands)
    assert all(
        c[c.index("--split-seeds") + 1 : c.index("--out")] == ["0", "1", "2", "3", "4"]
        for c in runs
    )
    assert {c[c.index("--model") + 1] for c in tunes} == {
        c[c.index("--models") + 1] for c in runs
    } - {"MostPop"}
    # a model with nothing to tune runs without a tuning file (it may not exist yet)
    assert all(
        ("--tuned" in c) == (c[c.index("--models") + 1] not in spec["untuned"]) for c in runs
    )
    for tune_step in tunes:  # each tuning runs before the draws of its model, dataset and protocol
        model, dataset = (
            tune_step[tune_step.index("--model") + 1],
            tune_step[tune_step.index("--dataset") + 1],
        )
        step = next(
            i
            for i, c in enumerate(commands)
            if c[0] == "benchmarks/run.py"
            and c[2] == model
            and c[4] == dataset
            and c[6] == tune_step[tune_step.index("--protocol") + 1]
        )
        assert commands.index(tune_step) == step - 1
    ease = next(c for c in tunes if c[c.index("--model") + 1] == "EASE")
    mdcvae = next(c for c in tunes if c[c.index("--model") + 1] == "MDCVAE")
    assert "exhaustive" in ease and mdcvae[mdcvae.index("--max-evals") + 1] == str(spec["budget"])


def test_suite_status_counts_trials_draws_and_their_seconds(tmp_path, monkeypatch):
    """--status reads what a step's files hold: trials before and after the tuning record, then
    the draws of the chosen setting, with the seconds their processes took."""
    import suite

    monkeypatch.setattr(suite, "HERE", tmp_path / "benchmarks")
    monkeypatch.chdir(tmp_path)  # the test's own record_specs call reads the step's files
    logs = tmp_path / "benchmarks" / "results" / "logs"
    logs.mkdir(parents=True)
    (tmp_path / "settings.yaml").write_text("EASE: {}\n")
    (tmp_path / "space.hyper").write_text("reg_weight choice [1.0, 2.0]\n")
    common = ["--settings", "settings.yaml"]
    tune_step = ["benchmarks/tune.py", "--model", "EASE", "--dataset", "citeulike-a"]
    tune_step += ["--protocol", "strong", *common, "--params-file", "space.hyper"]
    tune_step += ["--algo", "exhaustive", "--out", "tuning.json", "--resume"]
    run_step = ["benchmarks/run.py", "--models", "EASE", "--datasets", "citeulike-a"]
    run_step += ["--protocols", "strong", *common, "--tuned", "tuning.json"]
    run_step += ["--split-seeds", "0", "1", "--out", "benchmarks/results/out.json", "--resume"]

    def finish(config, seconds, trial):
        tag = ("trial-" if trial else "") + run.run_tag("EASE", "citeulike-a", config)
        spec = {"model": "EASE", "dataset": "citeulike-a", "config": config}
        result = {"build_seconds": 1.0, "fit_seconds": seconds - 1.0, "eval_seconds": 0.0}
        (logs / f"{tag}.json").write_text(json.dumps({"spec": spec, "result": result}))

    protocol, split = run.parse_protocol("strong")
    [base] = run.run_specs("EASE", "citeulike-a", protocol, split, {}, split_seeds=[0])
    assert suite.tuning_status(tune_step) == (False, "0 of 2 trials", 0.0)
    finish(dict(base, reg_weight=1.0), 60.0, trial=True)
    assert suite.tuning_status(tune_step) == (False, "1 of 2 trials", 60.0)
    assert suite.draws_status(run_step) == (False, "waits for its tuning", 0.0)
    trial = logs / f"trial-{run.run_tag('EASE', 'citeulike-a', dict(base, reg_weight=2.0))}"
    torch.save({"epoch": 2, "weights": {}}, f"{trial}.snapshot.pth")  # a trial under way
    assert suite.tuning_status(tune_step)[1] == "1 of 2 trials, 1 under way (epochs 3 done)"
    os.remove(f"{trial}.snapshot.pth")

    tuned = {"model": "EASE", "dataset": "citeulike-a", "protocol": "strong", "trials": 2}
    tuned["chosen"] = {"reg_weight": 1.0}
    (tmp_path / "tuning.json").write_text(json.dumps([tuned]))
    assert suite.tuning_status(tune_step) == (True, "tuned, 2 trials", 60.0)
    assert suite.draws_status(run_step) == (False, "0 of 2 draws", 0.0)
    specs, _ = run.record_specs(
        run.build_parser().parse_args(run_step[1:]), "EASE", "citeulike-a", "strong"
    )
    finish(specs[0], 30.0, trial=False)
    draw = logs / f"{run.run_tag('EASE', 'citeulike-a', specs[1])}.snapshot.pth"
    torch.save({"epoch": 6, "weights": {}}, draw)  # the second draw, interrupted
    assert suite.draws_status(run_step) == (
        False,
        "1 of 2 draws, 1 under way (epochs 7 done)",
        30.0,
    )
    finish(specs[1], 30.0, trial=False)
    assert suite.draws_status(run_step) == (True, "2 of 2 draws", 60.0)
    no_settings = [a for a in tune_step if a not in common]  # a table without a settings file
    assert suite.tuning_status(no_settings) == (True, "tuned, 2 trials", 60.0)


def test_suite_steps_side_by_side_wait_for_their_tuning(tmp_path, monkeypatch):
    """--jobs 2: at most two steps at once, in the suite's order as far as tunings allow; a
    run step starts after its tuning; a failed tuning's run step is skipped, the rest go on."""
    import subprocess

    import suite

    monkeypatch.setattr(suite, "HERE", tmp_path / "benchmarks")
    tune = lambda model: [
        "benchmarks/tune.py",
        "--model",
        model,
        "--dataset",
        "d",
        "--protocol",
        "p",
    ]
    draws = lambda model: ["benchmarks/run.py", "--models", model, "--datasets", "d"]
    draws_tuned = lambda model: draws(model) + ["--protocols", "p", "--tuned", "t.json"]
    commands = [tune("A"), draws_tuned("A"), tune("B"), draws_tuned("B"), draws("C")]
    assert suite.waits_for(commands) == {1: 0, 3: 2}
    events = tmp_path / "events"

    def start(argv, log_file):  # a step: logs its start, works a moment, logs its end
        model = argv[argv.index("--model" if "--model" in argv else "--models") + 1]
        step = f"{argv[0].split('/')[1][:-3]}-{model}"
        code = 1 if step == "tune-B" else 0
        script = (
            f"import time; f = open({str(events)!r}, 'a'); f.write('start {step}\\n'); f.flush(); "
            f"time.sleep(0.3); f.write('end {step}\\n'); raise SystemExit({code})"
        )
        return subprocess.Popen([sys.executable, "-c", script])

    failed = suite.run_side_by_side("s", commands, jobs=2, start=start, poll_seconds=0.05)
    lines = events.read_text().split()
    order = [f"{a} {b}" for a, b in zip(lines[::2], lines[1::2])]
    assert failed == 2  # tune-B, and run-B skipped
    assert "start run-B" not in order and "start run-C" in order
    assert order.index("start run-A") > order.index("end tune-A")
    running, most = 0, 0
    for event in order:
        running += 1 if event.startswith("start") else -1
        most = max(most, running)
    assert most == 2


def test_process_seconds_cpu_time_else_the_wall_clock_timings():
    import suite

    older = {"build_seconds": 2.0, "epochs": 3, "epoch_seconds": 4.0, "valid_seconds": 1.0}
    assert suite.process_seconds(older) == 2.0 + 3 * 5.0
    assert suite.process_seconds(dict(older, fit_seconds=7.0, eval_seconds=1.0)) == 10.0
    assert suite.process_seconds(dict(older, fit_seconds=7.0, cpu_seconds=4.5)) == 4.5


def toy_suite_step(tmp_path, monkeypatch):
    """The run.py step of a suite "toy" in ``tmp_path``: Pop on ml-100k, two draws."""
    import suite

    bench = tmp_path / "benchmarks"
    monkeypatch.setattr(suite, "HERE", bench)
    (bench / "suites").mkdir(parents=True)
    (bench / "suites" / "toy.yaml").write_text(
        "split_seeds: [0, 1]\nbudget: 1\nuntuned: [Pop]\ntables:\n"
        "  - {name: t, out: results/out.json, tuning: tuning.json, settings: settings.yaml,\n"
        "     datasets: [ml-100k], protocols: [recbole], models: [Pop]}\n"
    )
    (tmp_path / "settings.yaml").write_text("Pop: {epochs: 2, state: ERROR, topk: [10]}\n")
    [step] = [argv for argv in suite.load_suite("toy") if argv[0] == "benchmarks/run.py"]
    return step


def suite_processes(step):
    import suite

    return suite.step_processes(step)


@pytest.mark.slow
@pytest.mark.usefixtures("in_tmp")
def test_reproduce_runs_a_stored_draw_again_and_tells_a_number_that_changed(
    tmp_path, monkeypatch, capsys
):
    """benchmarks/reproduce.py runs the stored process of a record's draw again and compares
    every metric exactly: the same numbers pass, a stored number that differs fails (exit 1,
    the metric named, the rerun's log kept); a draw not run yet is listed, not checked."""
    import reproduce

    step = toy_suite_step(tmp_path, monkeypatch)
    model, dataset, spec, tag = suite_processes(step)[0]
    run.run_process(model, dataset, spec, tag.parent)  # draw 0 stored; draw 1 never run
    out = tmp_path / "check.json"

    assert reproduce.main(["--suite", "toy", "--out", str(out)]) == 0
    [entry] = json.loads(out.read_text())
    assert entry["differences"] == {} and entry["metrics"] > 4
    assert entry["threads"] == int(os.environ.get("OMP_NUM_THREADS", run.PROCESS_THREADS))
    assert "same (" in out.with_suffix(".md").read_text()
    assert reproduce.main(["--suite", "toy", "--out", str(out), "--draw", "1"]) == 0
    assert "Pop ml-100k recbole: draw 1 not run yet" in out.with_suffix(".md").read_text()

    stored = json.loads(Path(f"{tag}.json").read_text())
    stored["result"]["tests"]["test"]["hit@10"] += 0.0001
    Path(f"{tag}.json").write_text(json.dumps(stored))
    assert reproduce.main(["--suite", "toy", "--out", str(out)]) == 1
    [entry] = json.loads(out.read_text())
    assert list(entry["differences"]) == ["test"]
    assert list(entry["differences"]["test"]) == ["hit@10"]
    assert "**differs**: 1 of" in out.with_suffix(".md").read_text()
    assert "metrics, e.g. test hit@10 " in out.with_suffix(".md").read_text()
    assert (tmp_path / "logs" / f"{tag.name}.log").exists()

    # --resume keeps a check made at today's commit (this one differs: exit 1 still);
    # --max-minutes leaves a long run out
    capsys.readouterr()
    assert reproduce.main(["--suite", "toy", "--out", str(out), "--resume"]) == 1
    assert "checked already under this code" in capsys.readouterr().out
    stored["result"]["tests"]["test"]["hit@10"] -= 0.0001  # the record rerun: checked again
    Path(f"{tag}.json").write_text(json.dumps(stored))
    assert reproduce.main(["--suite", "toy", "--out", str(out), "--resume"]) == 0
    assert "running again" in capsys.readouterr().out
    assert reproduce.main(["--suite", "toy", "--out", str(out), "--max-minutes", "0"]) == 0
    assert "draw 0 its run took 0 CPU minutes" in out.with_suffix(".md").read_text()


def test_reproduce_compares_every_stored_metric_and_no_metric_added_since():
    import reproduce

    stored = {
        "tests": {"test": {"recall@20": 0.3, "ndcg@20": 0.2}, "+F": {"recall@20": 0.4}},
        "valid_metrics": {"a": 1},
    }
    rerun = {
        "tests": {"test": {"recall@20": 0.3, "tied_users": 0.0}, "+F": {"recall@20": 0.5}},
        "valid_metrics": {"a": 2},
    }
    assert reproduce.differences(stored, rerun) == {
        "test": {"ndcg@20": [0.2, None]},
        "test +F": {"recall@20": [0.4, 0.5]},
        "validation": {"a": [1, 2]},
    }
    assert reproduce.differences(stored, stored) == {}


@pytest.mark.slow
@pytest.mark.usefixtures("in_tmp")
def test_reproduce_rerun_mends_a_record_that_gave_other_numbers(tmp_path, monkeypatch):
    """--rerun removes the stored draws of a record whose draw gave other numbers, runs its step
    again at today's code, and checks the rerun draw against the check's own run."""
    import reproduce

    step = toy_suite_step(tmp_path, monkeypatch)
    run_step = [sys.executable, str(REPO / "benchmarks" / "run.py"), *step[1:]]  # --resume
    subprocess.run(run_step, check=True)
    draws = [Path(f"{tag}.json") for *_, tag in suite_processes(step)]
    stored = [json.loads(d.read_text()) for d in draws]
    for draw, before in zip(draws, stored):  # as if made at older code; draw 0 gave other numbers
        old = json.loads(json.dumps(before))
        old["result"]["commit"] = "0ld0ld0"
        old["result"]["tests"]["test"]["hit@10"] += 0.0001 if draw == draws[0] else 0
        draw.write_text(json.dumps(old))
    subprocess.run(run_step, check=True)  # the record made of those draws
    out = tmp_path / "check.json"
    assert reproduce.main(["--suite", "toy", "--out", str(out)]) == 1

    # a rerun under way: draw 0 made again, the record not yet rewritten; it is not checked,
    # and the check that differed stays (the record stays stale)
    old_draw = draws[0].read_text()
    draws[0].write_text(json.dumps(stored[0]))
    assert reproduce.main(["--suite", "toy", "--out", str(out)]) == 0
    assert "its record is being rerun" in out.with_suffix(".md").read_text()
    assert json.loads(out.read_text())[0]["differences"]
    draws[0].write_text(old_draw)

    assert reproduce.main(["--suite", "toy", "--out", str(out), "--resume", "--rerun"]) == 0
    [entry] = json.loads(out.read_text())
    assert entry["differences"] == {} and entry["rerun_of"] == "0ld0ld0"
    rerun = [json.loads(d.read_text())["result"] for d in draws]
    assert entry["stored_digest"] == reproduce.result_digest(rerun[0])
    assert "rerun (was 0ld0ld0): same (" in out.with_suffix(".md").read_text()
    for now, before in zip(rerun, stored):  # every draw made again, to the same numbers
        assert now["tests"] == before["result"]["tests"] and now["commit"] != "0ld0ld0"
