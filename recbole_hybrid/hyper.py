"""Hyperparameter search: RecBole's ``HyperTuning`` (hyperopt) over ``objective_function``.

Every trial trains on the training split and keeps its best epoch on validation; the trial
chosen is the one with the best ``best_valid_score`` (the ``valid_metric``). Test metrics
are recorded for each trial and never used for choosing.

Search spaces: ``properties/hyper/<Model>.hyper`` (``default.hyper`` for a model without
one), RecBole's params-file format, one ``name type value`` per line, plus ``#`` comments:

    lambda_v choice [0.1, 1.0, 10.0]      # a list of values (a Python literal)
    learning_rate loguniform -9.2,-4.6    # exp(uniform(low, high)); also uniform, quniform
"""

import ast
import logging
import math
import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from recbole_hybrid.checkpoint import atomic_file_digests
from recbole_hybrid.config import Config
from recbole_hybrid.properties_path import properties_dir
from recbole_hybrid.quick_start import objective_function
from recbole_hybrid.training_snapshot import code_digest
from recbole_hybrid.trial_log import TrialLog

ALGOS = ("exhaustive", "random", "bayes")
PARAM_TYPES = ("choice", "uniform", "quniform", "loguniform")
REPEATS_ALLOWED = 50  # proposals per distinct trial before a random search gives up


def params_file_for(model):
    """``properties/hyper/<model>.hyper``, else ``properties/hyper/default.hyper``."""
    own = properties_dir() / "hyper" / f"{model}.hyper"
    return own if own.is_file() else properties_dir() / "hyper" / "default.hyper"


def read_space(params_file):
    """A params file as RecBole's ``params_dict``: {type: {name: value}}."""
    space = {}
    for number, line in enumerate(Path(params_file).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, kind, value = (line.split(None, 2) + ["", ""])[:3]
        if kind not in PARAM_TYPES or not value:
            raise ValueError(
                f"{params_file}:{number}: expected 'name {'|'.join(PARAM_TYPES)} value', "
                f"got {line!r}"
            )
        if any(name in names for names in space.values()):
            raise ValueError(f"{params_file}:{number}: {name} is searched twice")
        parsed = (
            ast.literal_eval(value) if kind == "choice" else [float(v) for v in value.split(",")]
        )
        space.setdefault(kind, {})[name] = parsed
    if not space:
        raise ValueError(f"{params_file}: no parameter to search")
    return space


def searched_names(space):
    return sorted(name for names in space.values() for name in names)


def check_fixed(space, fixed_names):
    """A searched parameter must not be fixed as well (a command-line value would win every
    trial)."""
    clash = sorted(set(searched_names(space)) & set(fixed_names))
    if clash:
        raise ValueError(
            f"{clash} are searched and also fixed (config_dict / command line): "
            "drop them from one of the two"
        )


class TrialObjective:
    """``objective(config_dict, config_file_list)`` with the fixed settings (model, dataset, ...)
    under each trial's parameters, as ``HyperTuning`` calls it."""

    def __init__(self, objective, fixed):
        self.objective, self.fixed = objective, fixed

    def __call__(self, params, config_file_list=None):
        return self.objective(dict(self.fixed, **params), config_file_list)


@contextmanager
def search_seed(seed):
    """hyperopt's ``fmin`` draws its proposals from ``HYPEROPT_FMIN_SEED``: a repeatable search."""
    before = os.environ.get("HYPEROPT_FMIN_SEED")
    os.environ["HYPEROPT_FMIN_SEED"] = str(seed)
    try:
        yield
    finally:
        if before is None:
            del os.environ["HYPEROPT_FMIN_SEED"]
        else:
            os.environ["HYPEROPT_FMIN_SEED"] = before


def hyper_tuning(objective, space, algo, max_evals, early_stop, config_file_list):
    """RecBole's ``HyperTuning``; ``max_evals``: distinct settings tried (it also caps the
    exhaustive grid)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hyperopt 0.2.5 imports pkg_resources
        import hyperopt  # noqa: F401
        from recbole.trainer.hyper_tuning import HyperTuning
    if algo not in ALGOS:
        raise ValueError(f"algo [{algo}] must be one of {ALGOS}")
    if algo == "exhaustive" and set(space) != {"choice"}:
        raise ValueError(
            "algo exhaustive is a grid over 'choice' parameters; "
            f"{sorted(set(space) - {'choice'})} need algo random or bayes"
        )
    tuner = HyperTuning(
        objective,
        params_dict=space,
        fixed_config_file_list=config_file_list,
        algo=algo,
        max_evals=max_evals or 100,
        early_stop=early_stop,
    )
    # the budget counts distinct settings: a random or bayes search may propose one again
    grid = grid_size(space)
    tuner.budget = min(max_evals or (grid if algo == "exhaustive" else 100), grid)
    tuner.max_evals = tuner.budget * (1 if algo == "exhaustive" else REPEATS_ALLOWED)
    tuner.early_stop = early_stop
    return tuner


def grid_size(space):
    """Number of settings of an all-``choice`` space (inf when a parameter is continuous)."""
    if set(space) != {"choice"}:
        return math.inf
    return math.prod(len(values) for values in space["choice"].values())


def loss(result):
    """hyperopt's loss of a trial's result (it minimises)."""
    score = result["best_valid_score"]
    return -score if result["valid_score_bigger"] else score


def keep_best(tuner, proposed):
    """Set ``tuner.best_params`` to the trial with the best finite validation score (the earliest
    on ties), or None. RecBole's own choice keeps a first trial whose score is NaN (nothing
    compares better) and replaces a first score of 0 by any later one."""
    finite = [k for k, r in tuner.params2result.items() if math.isfinite(r["best_valid_score"])]
    best = min(finite, key=lambda k: loss(tuner.params2result[k]), default=None)
    tuner.best_params = None if best is None else proposed[best]
    tuner.best_score = None if best is None else tuner.params2result[best]["best_valid_score"]


def say(line):
    print(line, flush=True)


def run_search(tuner, trial_log=None, log=say, clock=time.monotonic):
    """``HyperTuning.run`` with three changes. A setting proposed again is answered from its first
    trial, without training again. A trial whose validation score is not finite (a diverged
    model) is never chosen, and a search without a finite score stops with an error. Progress is
    one line when a trial starts and one when it ends (its validation score, the best so far, the
    time left), instead of hyperopt's bar, whose total counts the proposals a random search is
    allowed, not the trials it runs. ``trial_log`` (trial_log.TrialLog) logs each trial and
    answers the ones it holds from an earlier run of the search."""
    from hyperopt import STATUS_FAIL, STATUS_OK, fmin
    from hyperopt.exceptions import AllTrialsFailed

    first_run, proposed, trained = tuner.trial, {}, []
    tuner.proposals = 0
    started = clock()

    def answer(result):
        finite = math.isfinite(result["best_valid_score"])
        return {
            "loss": loss(result) if finite else None,
            "status": STATUS_OK if finite else STATUS_FAIL,
        }

    def trial(params):
        tuner.proposals += 1
        key = tuner.params2str(params)
        if key in tuner.params2result:
            return answer(tuner.params2result[key])
        number, budget = len(tuner.params2result) + 1, tuner.budget
        kept = trial_log.reusable(key) if trial_log else None
        log(f"[search] trial {number} of {budget}: {params}" + (" (reused)" if kept else ""))
        trial_started = clock()
        if kept is None:
            first_run(params)
            if not tuner.params2result[key].get("reused"):  # the objective's own store answered
                trained.append(clock() - trial_started)
            if trial_log:
                trial_log.add(key, tuner.params2result[key])
        else:
            tuner.params2result[key] = kept
        proposed[key] = params
        keep_best(tuner, proposed)
        result, now = tuner.params2result[key], clock()
        left = sum(trained) / max(len(trained), 1) * (budget - number)
        log(
            f"[search] trial {number} of {budget} done in {now - trial_started:.0f} s: valid "
            f"{result.get('valid_metric', 'score')} {result['best_valid_score']:.4f}"
            + (
                "; best so far none"
                if tuner.best_params is None
                else f"; best so far {tuner.best_score:.4f} ({tuner.params2str(tuner.best_params)})"
            )
            + (f"; about {left:.0f} s left" if number < budget and trained else "")
        )
        return answer(result)

    def stop(trials, *state):
        done = list(tuner.params2result)
        best = tuner.params2str(tuner.best_params) if tuner.best_params else None
        without_better = len(done) - 1 - done.index(best) if best else len(done)
        return len(done) >= tuner.budget or without_better >= tuner.early_stop, state

    hyperopt_log = logging.getLogger("hyperopt")
    level = hyperopt_log.level
    hyperopt_log.setLevel(logging.WARNING)  # its "early stop" line also ends a full budget
    try:
        fmin(
            trial,
            tuner.space,
            algo=tuner.algo,
            max_evals=tuner.max_evals,
            early_stop_fn=stop,
            show_progressbar=False,
        )
    except AllTrialsFailed:  # fmin's own choice at its end; keep_best has chosen (here: none)
        pass
    finally:
        hyperopt_log.setLevel(level)
    done = len(tuner.params2result)
    log(
        f"[search] {done} trials in {clock() - started:.0f} s"
        + (
            ""
            if done >= tuner.budget
            else f" (stopped before the budget of {tuner.budget}: no better trial in the last "
            f"{tuner.early_stop}, or no new setting proposed)"
        )
    )
    if tuner.best_params is None:
        raise ValueError(
            f"none of the {done} trials has a finite validation score "
            f"({[r['best_valid_score'] for r in tuner.params2result.values()]}): the models "
            "diverged; search smaller learning rates or stronger regularisation"
        )


def trials(tuner):
    """Every trial: its parameters, validation score and results, in the order run."""
    return [
        {
            "params": params,
            "valid_score": result["best_valid_score"],
            "best_valid_result": result["best_valid_result"],
            "test_result": result["test_result"],
        }
        for params, result in tuner.params2result.items()
    ]


def best_trial(tuner):
    """The trial chosen on validation (``HyperTuning.best_params``; ``chosen``: its parameters as
    values)."""
    chosen = tuner.params2str(tuner.best_params)
    return dict(
        next(t for t in trials(tuner) if t["params"] == chosen), chosen=dict(tuner.best_params)
    )


def export(tuner, output_file):
    """RecBole's export (each trial: parameters, valid result, test result) + the chosen trial."""
    tuner.export_result(output_file=output_file)
    best = best_trial(tuner)
    with open(output_file, "a") as out:
        out.write(
            f"Best on validation (valid score {best['valid_score']:.4f}; "
            "test not used for choosing):\n"
            f"{best['params']}\n"
        )


def search_log(path, resume, space, algo, seed, fixed, config_file_list, command_line):
    """The TrialLog of a search: its identity, and the digests of its dataset's atomic files as
    they are now (read where the trials' Config puts them)."""
    config = Config(config_dict=fixed, config_file_list=config_file_list)
    identity = {
        "space": space,
        "algo": algo,
        "search_seed": seed,
        "fixed": fixed,
        "config_files": {f: Path(f).read_text() for f in config_file_list or []},
        "command_line": sorted(command_line),
        "code": code_digest(),
    }
    data_files = atomic_file_digests(config["data_path"], config["dataset"])
    return TrialLog(path, identity, data_files, resume, log=say)


def tune(
    model,
    dataset,
    params_file=None,
    algo="exhaustive",
    max_evals=None,
    early_stop=10,
    config_dict=None,
    config_file_list=None,
    output_file=None,
    seed=2020,
    fixed_names=(),
    objective=objective_function,
    trial_log_file=None,
    resume=False,
    command_line=(),
):
    """Search ``params_file`` (default: the model's) for ``model`` on ``dataset``. ``config_dict``
    and ``config_file_list`` are fixed for every trial; ``fixed_names``: keys set elsewhere (the
    command line, whose ``--key=value`` arguments are ``command_line``). ``trial_log_file``: each
    finished trial is logged there, and with ``resume`` the trials it holds of this same search
    are reused (trial_log.py). Returns {'best': the chosen trial, 'trials': every trial,
    'proposals': the settings the search proposed, repeats included}."""
    space = read_space(params_file or params_file_for(model))
    check_fixed(space, set(config_dict or {}) | set(fixed_names) | {"model", "dataset"})
    fixed = dict(config_dict or {}, model=model, dataset=dataset)
    tuner = hyper_tuning(
        TrialObjective(objective, fixed), space, algo, max_evals, early_stop, config_file_list
    )
    log = trial_log_file and search_log(
        trial_log_file, resume, space, algo, seed, fixed, config_file_list, command_line
    )
    with search_seed(seed):
        run_search(tuner, log or None)
    if output_file:
        export(tuner, output_file)
    return {"best": best_trial(tuner), "trials": trials(tuner), "proposals": tuner.proposals}
