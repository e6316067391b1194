"""Seconds per training epoch of a model against a reference model, in one process, on the
same dataset, protocol and seed; the epochs of the two alternate (A B A B ...) so that a
busy machine slows both alike. Prints a JSON line with every epoch's seconds, the medians,
the ratio and the peak memory (RSS) after each model's epochs.

    python benchmarks/epoch_speed.py MDCVAE MultiVAE citeulike-a --protocol strong --epochs 3
    python benchmarks/epoch_speed.py CVAE MultiVAE citeulike-a --protocol fixed \
        --set fixed_split=P=10

An epoch is one epoch of the trainer's ``fit`` (MDCVAE: b-step + t-step; CVAE: VAE pass + ALS
sweep), timed by the trainer's epoch hooks (recbole_hybrid/epoch_clock.py); one-off pretraining
is timed apart (``pretrain_seconds``). One more epoch of each, untimed, counts the floating-point
operations of its dense matrix products (torch's FlopCounterMode; sparse products are not
counted): their ratio (``flop_ratio``) is the epoch ratio the models' math allows when both
run their products at the same speed.
"""

import argparse
import datetime
import json
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode
from run import code_version
from run_one import build

from recbole_hybrid.epoch_clock import EpochLog


def build_pretrained(model, dataset, config_dict):
    """(trainer, train data, pretraining seconds, its epoch log) of ``model``, pretrained."""
    _, (train, _, _), trainer, _ = build(
        {"model": model, "dataset": dataset, "config": config_dict}
    )
    pretrain = 0.0
    if hasattr(trainer, "pretrain"):
        start = time.perf_counter()
        trainer.pretrain(train)
        pretrain = time.perf_counter() - start
    log = EpochLog()
    trainer.epoch_hooks.append(log)
    return trainer, train, pretrain, log


def one_epoch(trainer, train, epoch):
    """Epoch ``epoch`` of RecBole's ``fit``, without validation or checkpoint."""
    trainer.start_epoch, trainer.epochs = epoch, epoch + 1
    trainer.fit(train, None, verbose=False, saved=False, show_progress=False)


def epoch_gflop(trainer, train, epoch):
    """Dense matrix-product GFLOP of epoch ``epoch`` (untimed)."""
    with FlopCounterMode(display=False) as counter:
        one_epoch(trainer, train, epoch)
    return round(counter.get_total_flops() / 1e9, 1)


def peak_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model")
    parser.add_argument("reference")
    parser.add_argument("dataset")
    parser.add_argument("--protocol", default="recbole")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--set", nargs="*", default=[], help="key=value for both models")
    parser.add_argument(
        "--out",
        help="add the record to this JSON list (benchmarks/speed/speed.json), replacing the "
        "record of the same command",
    )
    args = parser.parse_args()
    command = "python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/epoch_speed.py"] + sys.argv[1:]
    )
    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value from argv
    if args.threads:
        torch.set_num_threads(args.threads)
    config = {"protocol": args.protocol, "state": "WARNING", "show_progress": False}
    config.update({k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)})
    runs = {}
    for name in (args.model, args.reference):
        trainer, train, pretrain, log = build_pretrained(name, args.dataset, config)
        runs[name] = {
            "trainer": trainer,
            "train": train,
            "pretrain_seconds": round(pretrain, 2),
            "log": log,
        }
        runs[name]["peak_mb_after_build"] = peak_mb()
    for epoch in range(args.epochs):
        for run in runs.values():
            one_epoch(run["trainer"], run["train"], epoch)
    for run in runs.values():
        run["seconds"] = [round(s, 2) for s in run["log"].train_seconds]
        run["gflop"] = epoch_gflop(run["trainer"], run["train"], args.epochs)
    out = {
        name: {
            "epoch_seconds": run["seconds"],
            "median": statistics.median(run["seconds"]),
            "gflop_per_epoch": run["gflop"],
            "pretrain_seconds": run["pretrain_seconds"],
            "peak_mb_after_build": run["peak_mb_after_build"],
        }
        for name, run in runs.items()
    }
    ratio = out[args.model]["median"] / out[args.reference]["median"]
    record = {
        "model": args.model,
        "baseline": args.reference,
        "dataset": args.dataset,
        "protocol": args.protocol,
        "set": args.set,
        "threads": torch.get_num_threads(),
        "epochs": out,
        "ratio": round(ratio, 3),
        "flop_ratio": round(
            out[args.model]["gflop_per_epoch"] / out[args.reference]["gflop_per_epoch"], 3
        ),
        "peak_mb": peak_mb(),
        "command": command,
        "commit": code_version(),
        "date": datetime.date.today().isoformat(),
    }
    print(json.dumps(record))
    if args.out:
        path = Path(args.out)
        records = json.loads(path.read_text()) if path.exists() else []
        records = [r for r in records if r["command"] != command]  # the same command: remeasured
        path.write_text(json.dumps(records + [record], indent=1) + "\n")
        path.with_suffix(".md").write_text(speed_table(records + [record]))


def speed_table(records):
    """speed.md: every record of speed.json as a row, with the commands that made them."""
    lines = [
        "# Seconds per training epoch against a reference model",
        "",
        "Generated by `benchmarks/epoch_speed.py --out benchmarks/speed/speed.json` (both models "
        "built in one process, their epochs alternating so that load from other jobs slows both "
        "alike; the ratio is the median of the model's epochs over the reference's; the FLOP "
        "ratio is that of one more epoch's dense matrix products, the ratio the math allows "
        "at equal speed). Commands:",
        "",
    ]
    lines += [f"    {c}" for c in dict.fromkeys(r["command"] for r in records)]
    lines += [
        "",
        "| model | reference | data | threads | model s/epoch | reference s/epoch "
        "| ratio | FLOP ratio | peak MB | commit | date |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        ours, ref = r["epochs"][r["model"]], r["epochs"][r["baseline"]]
        lines.append(
            f"| {r['model']} | {r['baseline']} | {r['dataset']} · {r['protocol']} "
            f"| {r['threads']} | {ours['epoch_seconds']} | {ref['epoch_seconds']} "
            f"| **{r['ratio']}** | {r.get('flop_ratio', '–')} | {r['peak_mb']:.0f} "
            f"| {r['commit']} | {r['date']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
