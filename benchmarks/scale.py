"""Epoch seconds and peak memory at 1x, 2x and 4x the users and items of citeulike-a.

The larger datasets are block copies: copy k of a user interacts with copy k of her items, and
an item's copies keep its content, so users, items and interactions grow by the factor while
each user's history and the vocabulary stay as they are. Each (model, factor) runs in its own
process (peak memory is that process's RSS), on protocol ``strong``, one thread; a model with
epochs is timed over ``--epochs`` epochs of RecBole's ``fit`` after one-off pretraining, a
closed form or neighbourhood model by its fit. The growth law is a + b factor^e through the
three sizes (a: what does not grow), for seconds and for memory; the largest factor that fits
in 24 GB extrapolates the memory law.

    python benchmarks/scale.py --out benchmarks/speed/scale.json
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BASE = "citeulike-a"
FACTORS = (1, 2, 4)
MEMORY_GB = 24
SHORT_PRETRAINING = {"pretrain_layer_epochs": 1, "pretrain_latent_epochs": 1, "pretrain_epochs": 0}
MODELS = {  # settings of the speed records (benchmarks/speed/speed.md), short pretraining
    "MDCVAE": dict(SHORT_PRETRAINING, train_batch_size=500),
    "CVAE": dict(SHORT_PRETRAINING),
    "DualNet": {"train_batch_size": 500, "pretrain_layer_epochs": 1, "pretrain_refine_epochs": 0},
    "ContentKNN": {},
}
WITHOUT_EPOCHS = ("ContentKNN",)  # fitted when built


def block_copies(source_dir, out_root, factor):
    """<out_root>/<BASE>-x<factor>/: the .inter and .item files of ``factor`` block copies."""
    name = f"{BASE}-x{factor}"
    out = Path(out_root) / name
    if (out / f"{name}.item").exists():
        return name
    out.mkdir(parents=True, exist_ok=True)
    read = lambda ext: pd.read_csv(
        Path(source_dir) / f"{BASE}.{ext}", sep="\t", dtype=str, keep_default_na=False, quoting=3
    )
    inter, item = read("inter"), read("item")
    user, iid = inter.columns[0], inter.columns[1]
    copy = lambda frame, k, cols: (
        frame.assign(**{c: frame[c] + f"_c{k}" for c in cols}) if k else frame
    )
    pd.concat([copy(inter, k, [user, iid]) for k in range(factor)]).to_csv(
        out / f"{name}.inter", sep="\t", index=False, quoting=3
    )
    pd.concat([copy(item, k, [item.columns[0]]) for k in range(factor)]).to_csv(
        out / f"{name}.item", sep="\t", index=False, quoting=3
    )
    return name


def config_dict(model, data_root, workdir):
    dataset_keys = yaml.safe_load((REPO / "properties" / "dataset" / f"{BASE}.yaml").read_text())
    return dict(
        dataset_keys,
        **MODELS[model],
        protocol="strong",
        state="WARNING",
        show_progress=False,
        pretrain_cache=False,
        data_path=str(data_root),
        checkpoint_dir=str(workdir),
    )


def measure_one(model, factor, epochs, data_root):
    """This process: build ``model`` on the factor's copies, pretrain, time ``epochs`` epochs."""
    import torch
    from epoch_speed import build_pretrained, one_epoch, peak_mb

    torch.set_num_threads(1)
    name = f"{BASE}-x{factor}"
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        trainer, train, pretrain, log = build_pretrained(
            model, name, config_dict(model, data_root, workdir)
        )
        build = time.perf_counter() - start - pretrain
        for epoch in range(0 if model in WITHOUT_EPOCHS else epochs):
            one_epoch(trainer, train, epoch)
    dataset = train.dataset
    return {
        "model": model,
        "factor": factor,
        "users": int(dataset.user_num - 1),
        "items": int(dataset.item_num - 1),
        "train_interactions": int(len(dataset)),
        "build_seconds": round(build, 2),  # data, split and model (a neighbourhood model fits here)
        "pretrain_seconds": round(pretrain, 2),
        "epoch_seconds": [round(s, 2) for s in log.train_seconds],
        "peak_mb": peak_mb(),
        "load_after": [round(x, 2) for x in os.getloadavg()],  # other jobs slow every stage
    }


def cost(record):
    """Seconds per epoch (median), or the build's for a model without epochs."""
    seconds = sorted(record["epoch_seconds"])
    return seconds[len(seconds) // 2] if seconds else record["build_seconds"]


def doubling_law(records, key):
    """(a, b, e) of key = a + b factor^e through the values at 1x, 2x and 4x (a: what does not
    grow, such as the process itself), or None when they do not grow."""
    value = {r["factor"]: key(r) for r in records}
    if not all(f in value for f in (1, 2, 4)) or value[2] <= value[1] or value[4] <= value[2]:
        return None
    e = math.log2((value[4] - value[2]) / (value[2] - value[1]))
    if e <= 0:
        return None
    b = (value[2] - value[1]) / (2**e - 1)
    return value[1] - b, b, e


def law(fit):
    return "–" if fit is None else f"{fit[0]:.0f} + {fit[1]:.1f} x factor^{fit[2]:.2f}"


def scale_table(records, command):
    lines = [
        "# Epoch seconds and peak memory as citeulike-a grows",
        "",
        f"Generated by `{command}` (benchmarks/scale.py: block copies of citeulike-a, protocol "
        "strong, one thread, one process per row; *seconds*: median epoch, or the build for a "
        "model without epochs. Below, the law a + b x factor^e through the three sizes for "
        "seconds and peak MB (a: what does not grow), and the largest factor whose memory law "
        f"stays under {MEMORY_GB} GB).",
        "",
        "| model | factor | users | items | seconds | peak MB | commit | date |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['model']} | {r['factor']}x | {r['users']} | {r['items']} | {cost(r):.2f} "
            f"| {r['peak_mb']:.0f} | {r['commit']} | {r['date']} |"
        )
    lines += [
        "",
        f"| model | seconds | peak MB | fits in {MEMORY_GB} GB up to |",
        "|---|---|---|---|",
    ]
    for model in dict.fromkeys(r["model"] for r in records):
        rows = [r for r in records if r["model"] == model]
        memory = doubling_law(rows, lambda r: r["peak_mb"])
        fits = (
            "–"
            if memory is None
            else f"{((MEMORY_GB * 1024 - memory[0]) / memory[1]) ** (1 / memory[2]):.0f}x"
        )
        lines.append(f"| {model} | {law(doubling_law(rows, cost))} | {law(memory)} | {fits} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--factors", nargs="*", type=int, default=list(FACTORS))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data-root", default=str(REPO / "dataset" / "scale"))
    parser.add_argument("--out", help="JSON list to write (benchmarks/speed/scale.json)")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "FACTOR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value from argv
    if args.one:
        print(
            "RESULT_JSON "
            + json.dumps(measure_one(args.one[0], int(args.one[1]), args.epochs, args.data_root))
        )
        return
    from run import code_version
    import datetime

    import dataset_atomic

    source = dataset_atomic.ensure_atomic(BASE, REPO / "dataset")
    command = "python benchmarks/scale.py" + (f" --out {args.out}" if args.out else "")
    records = []
    for factor in args.factors:
        block_copies(source, args.data_root, factor)
        for model in args.models:
            print(f"[scale] {model} at {factor}x ...", flush=True)
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    model,
                    str(factor),
                    "--epochs",
                    str(args.epochs),
                    "--data-root",
                    args.data_root,
                ],
                capture_output=True,
                text=True,
                env=dict(os.environ, OMP_NUM_THREADS="1"),
            )
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT_JSON ")]
            if out.returncode or not lines:
                sys.exit(f"{model} at {factor}x failed:\n{out.stderr[-3000:]}")
            record = json.loads(lines[-1][len("RESULT_JSON ") :])
            record.update(commit=code_version(), date=datetime.date.today().isoformat())
            print(json.dumps(record), flush=True)
            records.append(record)
    if args.out:
        path = Path(args.out)
        path.write_text(json.dumps(records, indent=1) + "\n")
        path.with_suffix(".md").write_text(scale_table(records, command))


if __name__ == "__main__":
    main()
