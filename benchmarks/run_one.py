"""One benchmark run in its own process: train + test one (model, dataset, protocol) and
print a JSON line of results (metrics per test split, seconds per epoch, evaluation
seconds, peak memory). Called by benchmarks/run.py; usable alone:

    python benchmarks/run_one.py '{"model": "ContentKNN", "dataset": "citeulike-a", "config": {"protocol": "strong"}}'
"""
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from recbole.utils import init_logger, init_seed

from recbole_hybrid.config import Config
from recbole_hybrid.quick_start import evaluate_test, prepare

RESULT_PREFIX = "RESULT_JSON "
# keys of the machine or the run's output, not of the setting (left out of a record's config)
MACHINE_KEYS = {"device", "data_path", "checkpoint_dir", "gpu_id", "use_gpu", "state", "show_progress", "log_wandb",
                "wandb_project", "local_rank", "world_size", "nproc", "ip", "port", "offset", "single_spec",
                "worker", "shuffle", "config_files"}


def resolved_config(config):
    """The setting a run resolves to (every key, machine keys left out), JSON-safe: what a record
    stores, and what benchmarks/report.py compares with today's resolution of its command."""
    values = {k: v for k, v in config.final_config_dict.items() if k not in MACHINE_KEYS}
    return json.loads(json.dumps(values, sort_keys=True, default=str))


def config_for(spec):
    """RecBole's Config of a run spec, without reading this process's command line."""
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config reads --key=value from argv
    try:
        return Config(spec["model"], spec["dataset"], config_dict=dict({"show_progress": False}, **spec.get("config", {})))
    finally:
        sys.argv = argv


def timed(method, seconds, outputs=None):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = method(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
        if outputs is not None:
            outputs.append(out)
        return out

    return wrapper


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


def run(spec):
    config = config_for(spec)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    start = time.perf_counter()
    _, (train_data, valid_data, test_data), _, trainer = prepare(config)
    build_seconds = time.perf_counter() - start  # data, split and model: a closed form fits here
    epoch_seconds, valid_seconds, valid_outputs = [], [], []
    trainer._train_epoch = timed(trainer._train_epoch, epoch_seconds)
    trainer._valid_epoch = timed(trainer._valid_epoch, valid_seconds, valid_outputs)
    best_score, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    start = time.perf_counter()
    if spec.get("test", True):
        test_result = evaluate_test(trainer, test_data, load_best_model=True)
        tests = test_result if isinstance(test_data, dict) else {"test": test_result}
    else:  # a tuning trial: chosen on validation, the test split is never scored
        tests = {}
    eval_seconds = time.perf_counter() - start
    return {
        "tests": {name: with_ties(metrics) for name, metrics in tests.items()},
        "valid_metrics": with_ties(best_valid) if best_valid else {},
        "valid_score": best_score, "valid_metric": config["valid_metric"].lower(),
        "valid_metric_bigger": config["valid_metric_bigger"],
        "epoch_seconds": round(sum(epoch_seconds) / max(len(epoch_seconds), 1), 3),
        "valid_seconds": round(sum(valid_seconds) / max(len(valid_seconds), 1), 3),
        "eval_seconds": round(eval_seconds, 3),
        "build_seconds": round(build_seconds, 3),
        "epochs": len(epoch_seconds),
        "best_epoch": best_epoch(valid_outputs, config),
        "peak_mem_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seed": config["seed"],
        "config": resolved_config(config),
    }


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    print(RESULT_PREFIX + json.dumps(run(spec)), flush=True)
