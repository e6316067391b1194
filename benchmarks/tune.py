"""Tune a model on one split draw's validation, through recbole_hybrid.hyper (RecBole's
HyperTuning), each trial in its own process; the chosen setting then runs on every draw
(benchmarks/run.py --tuned).

    python benchmarks/tune.py --model EASE --dataset citeulike-a --protocol strong \
        --settings benchmarks/baselines.yaml --out benchmarks/tuning/tuning.json \
        [--params-file properties/hyper/EASE.hyper] [--algo exhaustive|random|bayes] [--max-evals N]
        [--draw 0] [--set key=value ...] [--resume]

Trials run on draw ``--draw`` (split_seed = seed = draw; fixed_seed on the random P-splits),
validation only: the test split is never scored. A trial's result is stored next to its log
(``benchmarks/results/logs/trial-*``); ``--resume`` reuses finished ones, and as the search's
proposals are seeded (``--search-seed``) a search cut short goes on where it stopped. The record
(one per model, dataset and protocol) holds the space, the number of trials, every trial's
validation score and the chosen setting.
"""

import argparse
import datetime
import json
import shlex
import sys
from pathlib import Path

from run import (
    HERE,
    code_version,
    model_config,
    parse_protocol,
    parse_settings,
    protocol_key,
    run_process,
    run_specs,
    same_but_provenance,
    update_records,
)

from recbole_hybrid.hyper import ALGOS, params_file_for, read_space, searched_names, tune

TRIAL_LOGS = HERE / "results" / "logs"  # beside the runs' results, which are committed for --resume


class TrialProcess:
    """``objective(config_dict, config_file_list)`` for HyperTuning: one benchmark process."""

    def __init__(self, model, dataset, log_dir, resume):
        self.model, self.dataset, self.log_dir, self.resume = model, dataset, log_dir, resume
        self.valid_metric = None

    def __call__(self, config_dict, config_file_list=None):
        config = {k: v for k, v in config_dict.items() if k not in ("model", "dataset")}
        result = run_process(
            self.model, self.dataset, config, self.log_dir, self.resume, test=False
        )
        self.valid_metric = result["valid_metric"]
        return {
            "model": self.model,
            "best_valid_score": result["valid_score"],
            "valid_metric": result["valid_metric"],
            "reused": result.get("reused", False),  # a stored trial: no time spent training
            "valid_score_bigger": result["valid_metric_bigger"],
            "best_valid_result": result["valid_metrics"],
            "test_result": None,
        }


def tuning_record(model, dataset, protocol_text, draw, space, algo, result, valid_metric, command):
    trials = result["trials"]
    best = result["best"]
    return {
        "model": model,
        "dataset": dataset,
        "protocol": protocol_text,
        "draw": draw,
        "space": space,
        "algo": algo,
        "trials": len(trials),
        "chosen": best["chosen"],
        "valid_score": best["valid_score"],
        "valid_metric": valid_metric,
        "every_trial": [{"params": t["params"], "valid_score": t["valid_score"]} for t in trials],
        "command": command,
        "commit": code_version(),
        "date": datetime.date.today().isoformat(),
    }


def save_tuning(record, out):
    """Store ``record``, replacing the one of its model, dataset and protocol; one that differs
    only in provenance (a rerun that reused every trial) is kept as it was."""

    def merge(existing):
        same = lambda r: protocol_key(r) == protocol_key(record)
        if any(same(r) and same_but_provenance(r, record) for r in existing):
            return existing
        return sorted([r for r in existing if not same(r)] + [record], key=protocol_key)

    update_records(out, merge, tuning_table)


def tuning_table(records):
    lines = [
        "# Tuning records",
        "",
        "Each model tuned on one draw's validation (benchmarks/tune.py); "
        "benchmarks/run.py --tuned runs the chosen setting on every draw. Commands:",
        "",
    ]
    lines += [f"    {c}" for c in sorted({r["command"] for r in records})]
    lines += [
        "",
        "| model | dataset | protocol | draw | algo | trials | valid metric | chosen | valid |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        chosen = ", ".join(f"{k}={v}" for k, v in r["chosen"].items())
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['protocol']} | {r['draw']} | {r['algo']} "
            f"| {r['trials']} | {r['valid_metric']} | {chosen} | {r['valid_score']:.4f} |"
        )
    flat = [
        r for r in records if len({t["valid_score"] for t in r["every_trial"]}) == 1 < r["trials"]
    ]
    lines += [""] * bool(flat) + [
        f"- {r['model']} {r['dataset']} {r['protocol']}: every trial scored "
        f"{r['valid_score']:.4f}: the searched settings make no difference here"
        for r in flat
    ]
    return "\n".join(lines) + "\n"


def trial_config(settings, overrides, model, dataset, space):
    """The settings every trial shares: the settings file's, less the keys the space searches
    (defaults the search decides, as run.py --tuned's chosen setting overrides them), under
    the --set overrides (a searched key given there stops the search: hyper.check_fixed)."""
    searched = set(searched_names(space))
    config = model_config(settings, overrides, model, dataset)
    return {k: v for k, v in config.items() if k in overrides or k not in searched}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument(
        "--protocol", required=True, help="as benchmarks/run.py: strong, cold, fixed:P=1-random ..."
    )
    parser.add_argument(
        "--out", required=True, help="tuning records (json; a markdown table beside it)"
    )
    parser.add_argument("--settings", help="yaml of per-model settings, as benchmarks/run.py")
    parser.add_argument("--set", nargs="*", help="key=value fixed for every trial")
    parser.add_argument(
        "--params-file", help="search space (default: properties/hyper/<model>.hyper)"
    )
    parser.add_argument("--algo", default="exhaustive", choices=ALGOS)
    parser.add_argument("--max-evals", type=int, help="at most this many trials (the budget)")
    parser.add_argument("--draw", type=int, default=0, help="the split draw tuned on")
    parser.add_argument(
        "--search-seed", type=int, default=2020, help="seed of hyperopt's proposals"
    )
    parser.add_argument(
        "--resume", action="store_true", help="reuse finished trials of the same spec"
    )
    args = parser.parse_args()
    settings, overrides = parse_settings(args)
    protocol, split = parse_protocol(args.protocol)
    params_file = args.params_file or params_file_for(args.model)
    space = read_space(params_file)
    config = trial_config(settings, overrides, args.model, args.dataset, space)
    [fixed] = run_specs(args.model, args.dataset, protocol, split, config, split_seeds=[args.draw])
    out = Path(args.out)
    objective = TrialProcess(args.model, args.dataset, TRIAL_LOGS, args.resume)
    result = tune(
        args.model,
        args.dataset,
        params_file=params_file,
        algo=args.algo,
        max_evals=args.max_evals,
        early_stop=10**6,
        config_dict=fixed,
        seed=args.search_seed,
        objective=objective,
    )
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0]))] + sys.argv[1:])
    record = tuning_record(
        args.model,
        args.dataset,
        args.protocol,
        args.draw,
        space,
        args.algo,
        result,
        objective.valid_metric,
        command,
    )
    save_tuning(record, out)
    print(
        json.dumps(
            {
                k: record[k]
                for k in ("model", "dataset", "protocol", "trials", "chosen", "valid_score")
            }
        )
    )


if __name__ == "__main__":
    main()
