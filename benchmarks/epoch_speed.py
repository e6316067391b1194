"""Seconds per training epoch of a model against a reference model, in one process, on the
same dataset, protocol and seed; the epochs of the two alternate (A B A B ...) so that a
busy machine slows both alike. Prints a JSON line with every epoch's seconds, the medians,
the ratio and the peak memory (RSS) after each model's epochs.

    python benchmarks/epoch_speed.py MDCVAE MultiVAE citeulike-a --protocol strong --epochs 3
    python benchmarks/epoch_speed.py CVAE MultiVAE citeulike-a --protocol fixed --set fixed_split=P=10

An epoch is what the model's trainer does in ``_train_epoch`` (MDCVAE: b-step + t-step;
CVAE: VAE pass + ALS sweep); one-off pretraining is timed apart (``pretrain_seconds``).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import yaml
from recbole.utils import init_logger, init_seed

from recbole_hybrid.config import Config
from recbole_hybrid.quick_start import prepare
from run import code_version


def build(model, dataset, config_dict):
    config = Config(model, dataset, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    _, (train, _, _), _, trainer = prepare(config)
    pretrain = 0.0
    if hasattr(trainer, "pretrain"):
        start = time.perf_counter()
        trainer.pretrain()
        pretrain = time.perf_counter() - start
    return trainer, train, pretrain


def peak_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("reference")
    parser.add_argument("dataset")
    parser.add_argument("--protocol", default="recbole")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--set", nargs="*", default=[], help="key=value for both models")
    parser.add_argument("--out", help="append the record to this JSON list (benchmarks/results/speed.json)")
    args = parser.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/epoch_speed.py"] + sys.argv[1:])
    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value from argv
    if args.threads:
        torch.set_num_threads(args.threads)
    config = {"protocol": args.protocol, "state": "WARNING", "show_progress": False}
    config.update({k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)})
    runs = {}
    for name in (args.model, args.reference):
        trainer, train, pretrain = build(name, args.dataset, config)
        runs[name] = {"trainer": trainer, "train": train, "pretrain_seconds": round(pretrain, 2), "seconds": []}
        runs[name]["peak_mb_after_build"] = peak_mb()
    for epoch in range(args.epochs):
        for name, run in runs.items():
            start = time.perf_counter()
            run["trainer"]._train_epoch(run["train"], epoch)
            run["seconds"].append(round(time.perf_counter() - start, 2))
    out = {name: {"epoch_seconds": run["seconds"], "median": statistics.median(run["seconds"]),
                  "pretrain_seconds": run["pretrain_seconds"], "peak_mb_after_build": run["peak_mb_after_build"]}
           for name, run in runs.items()}
    ratio = out[args.model]["median"] / out[args.reference]["median"]
    record = {"model": args.model, "baseline": args.reference, "dataset": args.dataset, "protocol": args.protocol,
              "set": args.set, "threads": torch.get_num_threads(), "epochs": out, "ratio": round(ratio, 3),
              "peak_mb": peak_mb(), "command": command, "commit": code_version(),
              "date": datetime.date.today().isoformat()}
    print(json.dumps(record))
    if args.out:
        path = Path(args.out)
        records = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps(records + [record], indent=1) + "\n")


if __name__ == "__main__":
    main()
