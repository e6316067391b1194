"""Hyperparameter search (issue 10, part 3): search-space files, selection on validation only,
run_hyper.py end to end (2 trials on ml-100k)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recbole_hybrid.config import Config
from recbole_hybrid.hyper import params_file_for, read_space, searched_names, tune
from recbole_hybrid.properties_path import properties_dir

REPO = Path(__file__).resolve().parents[1]
NOTHING_TO_TUNE = {"MostPop"}  # training-interaction counts: no hyperparameter

pytestmark = pytest.mark.usefixtures("in_tmp")


def our_models():
    return sorted(p.stem for p in (properties_dir() / "model").glob("*.yaml"))


@pytest.mark.parametrize(
    "model",
    sorted(set(our_models()) - NOTHING_TO_TUNE) + ["MultiVAE", "BPR", "EASE", "ItemKNN", "NeuMF"],
)
def test_search_space_names_parameters_of_the_model(model):
    """Every model of ours has its own file (RecBole's without one fall back to default.hyper),
    and every searched name is a key of the model's config (a typo would be searched in vain)."""
    params_file = params_file_for(model)
    assert params_file.stem == (model if model != "NeuMF" else "default")
    config = Config(model, "ml-100k", config_dict={"state": "ERROR"})
    unknown = [
        name
        for name in searched_names(read_space(params_file))
        if name not in config.final_config_dict
    ]
    assert not unknown, f"{params_file.name}: not parameters of {model}: {unknown}"


def test_read_space_comments_and_errors(tmp_path):
    good = tmp_path / "good.hyper"
    good.write_text(
        "# comment\nlambda_v choice [0.1, 1e-3]  # trailing\n\nlearning_rate loguniform -9,-4\n"
    )
    assert read_space(good) == {
        "choice": {"lambda_v": [0.1, 0.001]},
        "loguniform": {"learning_rate": [-9.0, -4.0]},
    }
    for text in (
        "lambda_v choose [1]\n",
        "lambda_v choice\n",
        "a choice [1]\na choice [2]\n",
        "# empty\n",
    ):
        (tmp_path / "bad.hyper").write_text(text)
        with pytest.raises(ValueError):
            read_space(tmp_path / "bad.hyper")


def stub_objective(bigger):
    """Valid and test scores ranked in opposite orders: choosing on test would pick another
    trial."""

    def objective(config_dict, config_file_list=None):
        a = config_dict["a"]
        return {
            "model": config_dict["model"],
            "best_valid_score": a,
            "valid_score_bigger": bigger,
            "best_valid_result": {"score": a},
            "test_result": {"score": -a},
        }

    return objective


@pytest.mark.parametrize("bigger", [True, False])
def test_best_trial_is_chosen_on_validation_only(tmp_path, bigger):
    space = tmp_path / "a.hyper"
    space.write_text("a choice [2, 3, 1]\n")
    out = tmp_path / "trials.result"
    result = tune(
        "MultiVAE", "ml-100k", params_file=space, output_file=out, objective=stub_objective(bigger)
    )
    assert sorted(t["params"] for t in result["trials"]) == ["a:1", "a:2", "a:3"]
    assert result["best"]["params"] == ("a:3" if bigger else "a:1")  # best valid; worst test
    text = out.read_text()
    assert all(f"a:{a}\nValid result:" in text for a in (1, 2, 3))
    assert text.rstrip().endswith(result["best"]["params"])


def test_searched_parameter_cannot_be_fixed_too(tmp_path):
    space = tmp_path / "a.hyper"
    space.write_text("a choice [1, 2]\nlr uniform 0.1,0.2\n")
    with pytest.raises(ValueError, match="searched and also fixed"):
        tune(
            "MultiVAE",
            "ml-100k",
            params_file=space,
            algo="random",
            config_dict={"a": 1},
            objective=stub_objective(True),
        )
    with pytest.raises(ValueError, match="searched and also fixed"):
        tune(
            "MultiVAE",
            "ml-100k",
            params_file=space,
            algo="random",
            fixed_names={"lr"},
            objective=stub_objective(True),
        )
    with pytest.raises(ValueError, match="grid over 'choice'"):
        tune("MultiVAE", "ml-100k", params_file=space, objective=stub_objective(True))


def counting_objective(calls):
    def objective(config_dict, config_file_list=None):
        calls.append(config_dict["a"])
        return {
            "model": config_dict["model"],
            "best_valid_score": config_dict["a"],
            "valid_score_bigger": True,
            "best_valid_result": {},
            "test_result": {},
        }

    return objective


@pytest.mark.parametrize("budget", [3, 6, 9])
def test_random_search_budget_counts_distinct_settings(tmp_path, budget):
    """hyperopt's random search repeats settings of a small grid; the budget is the number of
    distinct settings tried, never more than the grid, a repeat is answered without training
    again, and the same seed gives the same trials."""
    space = tmp_path / "a.hyper"
    space.write_text("a choice [1, 2, 3, 4, 5, 6]\n")
    runs = []
    for _ in range(2):
        calls = []
        result = tune(
            "MultiVAE",
            "ml-100k",
            params_file=space,
            algo="random",
            max_evals=budget,
            objective=counting_objective(calls),
        )
        runs.append(calls)
        assert len(result["trials"]) == len(calls) == len(set(calls)) == min(budget, 6)
        assert result["proposals"] > len(calls)  # this seed repeats a setting: not trained again
    assert runs[0] == runs[1]


def test_exhaustive_search_runs_the_whole_grid_unless_capped(tmp_path):
    space = tmp_path / "a.hyper"
    space.write_text(f"a choice {list(range(120))}\n")
    for max_evals, runs in ((None, 120), (7, 7)):
        calls = []
        tune(
            "MultiVAE",
            "ml-100k",
            params_file=space,
            max_evals=max_evals,
            early_stop=10**6,
            objective=counting_objective(calls),
        )
        assert len(calls) == len(set(calls)) == runs


def test_search_reports_each_trial_instead_of_hyperopts_bar(tmp_path, capfd):
    """One line when a trial starts and one when it ends (its score, the best so far, the time
    left), counted against the budget of distinct settings; no hyperopt bar, whose total counts
    the proposals allowed (50 per trial)."""
    space = tmp_path / "a.hyper"
    space.write_text("a choice [1, 2, 3, 4, 5, 6]\n")
    tune(
        "MultiVAE",
        "ml-100k",
        params_file=space,
        algo="random",
        max_evals=4,
        objective=counting_objective([]),
    )
    out, err = capfd.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("[search]")]
    assert [line.split(":")[0] for line in lines] == [
        f"[search] trial {n} of 4" + end for n in range(1, 5) for end in ("", " done in 0 s")
    ] + ["[search] 4 trials in 0 s"]
    assert all("best so far" in line for line in lines[1:-1:2])
    assert all("s left" in line for line in lines[1:-3:2]) and "left" not in lines[-2]
    assert "trial/s" not in err + out and "/200" not in err + out


def test_time_left_counts_only_trials_that_trained(tmp_path):
    """A trial the objective answers from its own store (benchmarks/tune.py --resume) took no
    training: the time left is estimated from the trials that trained."""
    from recbole_hybrid.hyper import hyper_tuning, run_search

    now, calls = [0.0], []

    def objective(config_dict, config_file_list=None):
        reused = len(calls) < 2  # two stored trials, then each trains for 100 s
        now[0] += 0 if reused else 100
        result = counting_objective(calls)(dict(config_dict, model="MultiVAE"))
        return dict(result, reused=reused)

    tuner = hyper_tuning(objective, {"choice": {"a": [1, 2, 3, 4]}}, "exhaustive", None, 10, None)
    lines = []
    run_search(tuner, log=lines.append, clock=lambda: now[0])
    done = [line for line in lines if " done in " in line]
    assert [line.split(" done in ")[1].split(" s")[0] for line in done] == ["0", "0", "100", "100"]
    assert done[2].endswith("about 100 s left")  # not (0 + 0 + 100) / 3


def test_search_says_when_it_stops_before_its_budget(tmp_path, capfd):
    """early_stop: the search stops after that many trials without a better one, and says so."""
    space = tmp_path / "a.hyper"
    space.write_text("a choice [1, 2, 3, 4, 5, 6]\n")

    def same_score(config_dict, config_file_list=None):
        return dict(counting_objective([])(config_dict), best_valid_score=0.5)

    result = tune("MultiVAE", "ml-100k", params_file=space, early_stop=2, objective=same_score)
    assert len(result["trials"]) == 3  # the first, then 2 without a better one
    assert "stopped before the budget of 6: no better trial in the last 2" in capfd.readouterr().out


@pytest.mark.parametrize("algo", ["exhaustive", "random", "bayes"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_trial_without_a_finite_score_is_never_chosen(tmp_path, algo, bad):
    """A diverged trial (NaN or infinite validation score) first in the search is not kept as the
    best (RecBole's choice keeps a NaN first trial); when no trial is finite the search stops."""
    space = tmp_path / "a.hyper"
    space.write_text("a choice [1, 2, 3]\n")
    first = []

    def diverges_first(config_dict, config_file_list=None):
        first.append(config_dict["a"])
        score = bad if config_dict["a"] == first[0] else config_dict["a"]
        return dict(counting_objective([])(config_dict), best_valid_score=score)

    result = tune("MultiVAE", "ml-100k", params_file=space, algo=algo, objective=diverges_first)
    assert len(result["trials"]) == 3
    assert result["best"]["params"] == f"a:{max(set((1, 2, 3)) - {first[0]})}"

    def diverges(config_dict, config_file_list=None):
        return dict(counting_objective([])(config_dict), best_valid_score=bad)

    with pytest.raises(ValueError, match="none of the 3 trials has a finite validation score"):
        tune("MultiVAE", "ml-100k", params_file=space, algo=algo, objective=diverges)


def parse_export(text):
    """run_hyper.py's output file -> ({params: valid metrics}, chosen params)."""
    *blocks, best = text.strip().split("\n\n")
    valid = {}
    for block in blocks:
        params, _, valid_line, _, _ = block.splitlines()
        valid[params] = {k: float(v) for k, v in re.findall(r"(\S+) : ([0-9.]+)", valid_line)}
    return valid, best.splitlines()[-1]


@pytest.mark.slow
def test_run_hyper_two_trials_on_ml100k(tmp_path):
    """The command line: MDCVAE (tiny), 2 trials; the output file lists both, and the chosen one
    has the higher validation ndcg@20."""
    (tmp_path / "grid.hyper").write_text("lambda_v choice [0.1, 10.0]\n")
    tiny = [
        "--epochs=2",
        "--pretrain_epochs=1",
        "--pretrain_layer_epochs=0",
        "--pretrain_latent_epochs=0",
        "--latent_dimension=32",
        "--content_hidden_sizes=[32]",
        "--show_progress=False",
        "--state=ERROR",
        "--metrics=['Recall','NDCG']",
        "--topk=[20]",
        "--valid_metric=ndcg@20",
    ]

    def run_hyper(*extra):
        out = subprocess.run(
            [
                sys.executable,
                str(REPO / "run_hyper.py"),
                "--model=MDCVAE",
                "--dataset=ml-100k",
                "--params_file=grid.hyper",
                "--max_evals=2",
                "--output_file=trials.result",
                *tiny,
                *extra,
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
            check=False,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout, (tmp_path / "trials.result").read_text()

    stdout, result = run_hyper()
    valid, chosen = parse_export(result)
    assert sorted(valid) == ["lambda_v:0.1", "lambda_v:10.0"]
    scores = {params: metrics["ndcg@20"] for params, metrics in valid.items()}
    assert len(set(scores.values())) == 2, scores  # distinct, or the choice proves nothing
    assert chosen == max(scores, key=scores.get)
    assert f"best params (chosen on validation): {chosen}" in stdout
    # started again with --resume=True: both trials come from the log, none trains
    stdout, again = run_hyper("--resume=True")
    assert stdout.count("(reused)") == 2 and "running parameters" not in stdout
    assert parse_export(again) == (valid, chosen)


class Stopped(Exception):
    """Stands for a search killed part-way."""


def test_a_stopped_search_resumes_from_its_trial_log(tmp_path, capfd):
    """Each finished trial is logged; started again with resume, the search answers those from the
    log (same proposals, same scores) and trains only the rest."""
    space = tmp_path / "a.hyper"
    space.write_text("a choice [1, 2, 3, 4, 5, 6]\n")
    log = tmp_path / "search.trials"
    search = dict(params_file=space, algo="random", max_evals=4, trial_log_file=log)
    straight = []
    whole = tune("MultiVAE", "ml-100k", **search, objective=counting_objective(straight))

    calls = []

    def stops_at_third(config_dict, config_file_list=None):
        if len(calls) == 2:
            raise Stopped
        return counting_objective(calls)(config_dict)

    with pytest.raises(Stopped):
        tune("MultiVAE", "ml-100k", **search, objective=stops_at_third)
    assert calls == straight[:2]
    capfd.readouterr()
    resumed = tune(
        "MultiVAE", "ml-100k", **search, resume=True, objective=counting_objective(calls)
    )
    assert calls == straight  # the first two were not trained again
    assert resumed["trials"] == whole["trials"] and resumed["best"] == whole["best"]
    out = capfd.readouterr().out
    assert f"[search] resume: 2 finished trials in {log} can be reused" in out
    assert out.count("(reused)") == 2


def test_a_trial_log_of_another_search_or_other_data_is_not_reused(tmp_path, monkeypatch, capfd):
    """Another fixed setting (epochs 2) is another search; changed atomic files, other data."""
    import recbole_hybrid.hyper as hyper

    space = tmp_path / "a.hyper"
    space.write_text("a choice [1, 2, 3]\n")
    search = dict(params_file=space, trial_log_file=tmp_path / "search.trials", resume=True)

    def trained(**settings):
        calls = []
        tune("MultiVAE", "ml-100k", **search, **settings, objective=counting_objective(calls))
        return len(calls), capfd.readouterr().out

    trained()
    runs, out = trained(config_dict={"epochs": 2})
    assert runs == 3 and "is of another search (setting, space or code): every trial runs" in out
    monkeypatch.setattr(hyper, "atomic_file_digests", lambda folder, name: {"x.inter": "changed"})
    runs, out = trained(config_dict={"epochs": 2})
    assert runs == 3 and "resume: 0 finished trials" in out and "(3 ran on other data)" in out
