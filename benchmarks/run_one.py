"""One benchmark run in its own process: train + test one (model, dataset, protocol) and
print a JSON line of results (metrics per test split, seconds per epoch, evaluation
seconds, peak memory). Called by benchmarks/run.py; usable alone:

    python benchmarks/run_one.py \
        '{"model": "ContentKNN", "dataset": "citeulike-a", "config": {"protocol": "strong"}}'

``--snapshot PATH``: training writes a snapshot there at most every SNAPSHOT_SECONDS
(recbole_hybrid/training_snapshot.py), and a process started again with the same spec, code and
data resumes from it, to the same result as without the interruption. run.py passes it and removes
the snapshot once the result is stored.
"""

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch
from recbole.utils import init_logger, init_seed

from recbole_hybrid.config import Config, resolved_config
from recbole_hybrid.epoch_clock import EpochLog
from recbole_hybrid.quick_start import evaluate_test, prepare
from recbole_hybrid.training_snapshot import TrainingSnapshot
from recbole_hybrid.training_snapshot import code_digest as package_code_digest

SNAPSHOT_SECONDS = 180  # at most this much training is lost when a process is killed
FIRST_PROCESS = {"fit_seconds": 0.0, "cpu_seconds": 0.0, "resumed_at_epochs": []}  # nothing earlier

RESULT_PREFIX = "RESULT_JSON "


def config_for(spec):
    """RecBole's Config of a run spec, without reading this process's command line."""
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config reads --key=value from argv
    try:
        return Config(
            spec["model"],
            spec["dataset"],
            config_dict=dict({"show_progress": False}, **spec.get("config", {})),
        )
    finally:
        sys.argv = argv


def with_ties(metrics):
    """Metrics with ``tied_users`` (the evaluator adds it only when some users are tied)."""
    return dict({"tied_users": 0.0}, **dict(metrics)) if metrics else {}


def best_epoch(valid_outputs, config):
    """Epoch (1-based) of the best validation score: the checkpoint that is tested. On a tie the
    last one, as RecBole's early_stopping saves again on a score equal to the best."""
    scores = [score for score, _ in valid_outputs]
    if not scores:
        return None
    best = (max if config["valid_metric_bigger"] else min)(scores)
    last = len(scores) - 1 - scores[::-1].index(best)
    return (last + 1) * config["eval_step"]


def build(spec):
    """(config, (train, valid, test), trainer, seconds) of a run spec: data, split and model built
    as run_recbole_hybrid.py builds them (a closed form fits here), seeded and logging."""
    config = config_for(spec)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    start = time.perf_counter()
    _, data, _, trainer = prepare(config)
    return config, data, trainer, time.perf_counter() - start


def code_digest():
    """The package's code digest (training_snapshot.code_digest) with this script's."""
    return package_code_digest([Path(__file__).resolve()])


def resume_training(trainer, train_data, log, spec, path):
    """(fit's callback, what the earlier processes took) with a snapshot at ``path``: an
    existing one of this spec, code and data (the dataset's atomic files) is restored into
    ``trainer`` and ``log`` first."""
    identity = {"spec": spec, "code": code_digest(), "data": trainer.data_identity["files"]}
    snapshot = TrainingSnapshot(trainer, train_data, path, identity, SNAPSHOT_SECONDS)
    earlier, state = FIRST_PROCESS, snapshot.stored()
    if state is not None:
        extra = snapshot.restore(state)
        vars(log).update(extra["log"])
        earlier = dict(extra["earlier"])
        earlier["resumed_at_epochs"] = earlier["resumed_at_epochs"] + [trainer.start_epoch]
        trainer.logger.info(f"resumed from the snapshot {path} at epoch {trainer.start_epoch}")
    elif Path(path).exists():
        trainer.logger.info(f"snapshot {path} is of another spec, code or data: training anew")
    start = time.perf_counter()
    progress = lambda: {
        "log": dict(vars(log)),
        "earlier": dict(
            earlier,
            fit_seconds=earlier["fit_seconds"] + time.perf_counter() - start,
            cpu_seconds=earlier["cpu_seconds"] + time.process_time(),
        ),
    }
    return snapshot.saver(progress), earlier


def run(spec, snapshot=None):
    config, (train_data, valid_data, test_data), trainer, build_seconds = build(spec)
    log = EpochLog()
    trainer.epoch_hooks.append(log)
    callback, earlier = (
        resume_training(trainer, train_data, log, spec, snapshot)
        if snapshot
        else (None, FIRST_PROCESS)
    )
    start = time.perf_counter()
    trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=callback)
    best_score, best_valid = trainer.best_valid_score, trainer.best_valid_result
    # pretraining, epochs and validation, of this process and the earlier ones
    fit_seconds = earlier["fit_seconds"] + time.perf_counter() - start
    start = time.perf_counter()
    if spec.get("test", True):
        test_result = evaluate_test(trainer, test_data, load_best_model=True)
        tests = test_result if isinstance(test_data, dict) else {"test": test_result}
    else:  # a tuning trial: chosen on validation, the test split is never scored
        tests = {}
    eval_seconds = time.perf_counter() - start
    # the best epoch's checkpoint served the test above; a closed form's is items x items, and
    # a suite writes hundreds of them: none is kept
    Path(trainer.saved_model_file).unlink(missing_ok=True)
    return {
        "tests": {name: with_ties(metrics) for name, metrics in tests.items()},
        "valid_metrics": with_ties(best_valid) if best_valid else {},
        "valid_score": best_score,
        "valid_metric": config["valid_metric"].lower(),
        "valid_metric_bigger": config["valid_metric_bigger"],
        "epoch_seconds": round(sum(log.train_seconds) / max(len(log.train_seconds), 1), 3),
        "valid_seconds": round(sum(log.valid_seconds) / max(len(log.valid_seconds), 1), 3),
        "eval_seconds": round(eval_seconds, 3),
        "build_seconds": round(build_seconds, 3),
        "fit_seconds": round(fit_seconds, 3),
        "pretrain_seconds": round(getattr(trainer, "pretrain_seconds", 0.0), 3),
        "epochs": len(log.train_seconds),
        "best_epoch": best_epoch(log.valid_outputs, config),
        "peak_mem_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # the whole process, imports included (+ the earlier ones' up to the snapshot resumed)
        "cpu_seconds": round(earlier["cpu_seconds"] + time.process_time(), 3),
        "seed": config["seed"],
        "threads": torch.get_num_threads(),  # float sums, so the last digits, can depend on it
        "config": resolved_config(config),
        **(
            {"resumed_at_epochs": earlier["resumed_at_epochs"]}
            if earlier["resumed_at_epochs"]
            else {}
        ),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="JSON: model, dataset, config (and test: false for a trial)")
    parser.add_argument("--snapshot", help="file of the training snapshot to write and resume")
    args = parser.parse_args()
    print(RESULT_PREFIX + json.dumps(run(json.loads(args.spec), args.snapshot)), flush=True)
