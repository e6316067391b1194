"""Benchmark harness: run (model x dataset x protocol) each in its own process, append the
records to a JSON results file and rewrite its markdown table.

    python benchmarks/run.py --models ContentKNN MultiVAE --datasets citeulike-a \
        --protocols recbole strong fixed:P=1 fixed:P=10-random \
        --out benchmarks/results/baselines.json \
        [--settings benchmarks/settings.yaml] [--set epochs=50 ...]

A protocol is ``name`` or ``fixed:<split>``; ``fixed:P=1-random`` runs fixed_seed 0..4 and
records the mean (each seed's metrics under ``per_seed``). ``--split-seeds 0 1 2 3 4`` runs
each record on several split draws: draw d sets split_seed = seed = d (the users of
``strong``, the cold items of ``cold``, RecBole's shuffle of ``recbole`` / ``loo99`` /
``rating``, and the model's initialisation), or fixed_seed = d on the random P-splits. Each
process's result is stored next to its log; ``--resume`` reuses those with the same spec (a
run cut short goes on).
Records follow the results schema: model, dataset, protocol, split, metrics (test),
epoch_seconds, eval_seconds, peak_mem_mb, epochs, seed, command, date (+ valid_metrics, the
mean over seeds with each seed's under per_seed_valid; note). Multi-seed records made before
the mean was kept hold their first seed's instead, as valid_metrics_first_seed.
"""

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RANDOM_SEEDS = range(5)


def parse_protocol(text):
    """'fixed:P=1-random' -> ('fixed', 'P=1-random'); 'strong' -> ('strong', None)."""
    name, _, split = text.partition(":")
    return name, split or None


def run_specs(model, dataset, protocol, split, config, seeds=None, split_seeds=None):
    """Specs of the processes for one record: one per draw of ``split_seeds`` (draw d runs with
    split_seed = seed = d, so the split and the model's initialisation both change; on the
    fixed protocol's random splits d is fixed_seed, the files drawn by the converter), else one
    per seed of ``seeds`` (RecBole's seed only), else the random P-splits' five files, else one."""
    base = dict(config, protocol=protocol)
    if protocol == "fixed":
        base["fixed_split"] = split
        draws = split_seeds or (RANDOM_SEEDS if split.endswith("-random") else None)
        if draws and not split.endswith("-random"):
            raise ValueError(
                f"--split-seeds: fixed:{split} is one file, not a random draw "
                f"(use fixed:{split}-random)"
            )
        return [dict(base, fixed_seed=d) for d in draws] if draws else [base]
    if split_seeds:
        return [dict(base, split_seed=d, seed=d) for d in split_seeds]
    return [dict(base, seed=seed) for seed in seeds] if seeds else [base]


def run_tag(model, dataset, config):
    """File name of one process's log and result: model, dataset, protocol, split, seeds and
    a digest of the whole config (runs of other settings keep their own files)."""
    parts = [
        model,
        dataset,
        config["protocol"],
        str(config.get("fixed_split", "")),
        str(config.get("fixed_seed", "")),
        str(config.get("seed", "")),
    ]
    digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return "_".join(parts).replace("=", "") + "-" + digest


def cached_result(result_file, spec):
    """The stored result of a finished process with exactly this spec, else None."""
    if not result_file.exists():
        return None
    stored = json.loads(result_file.read_text())
    as_stored = json.loads(json.dumps(spec, default=str))  # tuples (hyperopt's choices) as lists
    return stored["result"] if stored.get("spec") == as_stored else None


def process_spec(model, dataset, config, test=True):
    """What a process runs (``run_one.py``'s argument), stored beside its result."""
    return {
        "model": model,
        "dataset": dataset,
        "config": config,
        **({} if test else {"test": False}),
    }


def process_tag(model, dataset, config, test=True):
    """File name of a process's log and result (a tuning trial's starts with ``trial-``)."""
    return ("" if test else "trial-") + run_tag(model, dataset, config)


SNAPSHOT_SUFFIX = ".snapshot.pth"  # a process's training snapshot: <log dir>/<tag><suffix>
# torch threads of each process unless OMP_NUM_THREADS is set: a model trained by SGD takes
# another path with another count (sums in another order), so the records are made with one
PROCESS_THREADS = "1"


def process_env():
    return dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", PROCESS_THREADS))


def run_process(model, dataset, config, log_dir, resume=False, test=True):
    """Run one process (or, with ``resume``, reuse its stored result when the spec is the
    same); each finished process's result is stored next to its log with the commit it ran.
    The process keeps a training snapshot beside them; with ``resume`` an interrupted process
    goes on from it (same spec, code and data: run_one.py); it is removed with the result stored.
    ``test=False``: validation only (a tuning trial)."""
    spec, tag = (
        process_spec(model, dataset, config, test),
        process_tag(model, dataset, config, test),
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    with process_lock(log_dir, tag):
        return run_locked(spec, tag, log_dir, resume)


def run_locked(spec, tag, log_dir, resume):
    """run_process's work, under the process's lock."""
    log_file, result_file = log_dir / f"{tag}.log", log_dir / f"{tag}.json"
    snapshot = log_dir / f"{tag}{SNAPSHOT_SUFFIX}"
    if resume and (result := cached_result(result_file, spec)) is not None:
        print(f"REUSED {result_file} (commit {result.get('commit')})", flush=True)
        return dict(result, reused=True)
    if not resume:
        discard(snapshot)
    commit = code_version()  # the code the process starts with
    command = [sys.executable, str(HERE / "run_one.py"), json.dumps(spec)]
    mode = "a" if snapshot.exists() else "w"  # an interrupted process's log goes on
    with open(log_file, mode) as log:
        proc = subprocess.run(
            command + ["--snapshot", str(snapshot)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=process_env(),
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT_JSON ")]
    if proc.returncode != 0 or not lines:
        tail = log_file.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{tag} failed (exit {proc.returncode}): {tail[0]}  [log: {log_file}]")
    result = dict(json.loads(lines[-1][len("RESULT_JSON ") :]), commit=commit)
    result_file.write_text(json.dumps({"spec": spec, "result": result}) + "\n")
    discard(snapshot)
    return result


@contextlib.contextmanager
def process_lock(log_dir, tag):
    """Hold process ``tag``'s lock while it runs. Two commands that share a process (a suite
    step and a rerun of its record, or two suites) run it one after the other, the second
    reusing the first's result with --resume, instead of both writing its snapshot and log.
    The lock goes with the holder, even when it is killed."""
    locks = log_dir / ".locks"
    locks.mkdir(exist_ok=True)
    lock = os.open(locks / f"{tag}.lock", os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"WAITING: another command runs {tag}; this one goes on when it ends", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)  # releases the lock


def discard(snapshot):
    """Remove a training snapshot and the one being written when the process was killed."""
    for path in (snapshot, Path(f"{snapshot}.partial")):
        path.unlink(missing_ok=True)


def mean_metrics(metrics):
    """Mean of each metric over a list of {metric: value} (one per run)."""
    return {k: round(sum(m[k] for m in metrics) / len(metrics), 4) for k in metrics[0]}


def std_metrics(metrics):
    n = len(metrics)
    mean = {k: sum(m[k] for m in metrics) / n for k in metrics[0]}
    return {
        k: round((sum((m[k] - mean[k]) ** 2 for m in metrics) / (n - 1)) ** 0.5, 4)
        for k in metrics[0]
    }


def se_metrics(metrics):
    """Standard error of each metric's mean over the runs (std / sqrt(n))."""
    return {k: round(v / len(metrics) ** 0.5, 4) for k, v in std_metrics(metrics).items()}


def mean_seconds(runs, *names):
    """{name: mean over the runs} of the timings every run has (older runs lack the newer ones)."""
    return {
        name: round(sum(r[name] for r in runs) / len(runs), 3)
        for name in names
        if all(name in r for r in runs)
    }


def records_for(model, dataset, protocol, split, runs, command, variant=None, split_seeds=None):
    base = {
        "model": model,
        "dataset": dataset,
        "protocol": protocol,
        **({"variant": variant} if variant else {}),
        "epoch_seconds": round(sum(r["epoch_seconds"] for r in runs) / len(runs), 3),
        "eval_seconds": round(sum(r["eval_seconds"] for r in runs) / len(runs), 3),
        **mean_seconds(runs, "build_seconds", "fit_seconds", "pretrain_seconds"),
        "peak_mem_mb": max(r["peak_mem_mb"] for r in runs),
        "epochs": [r["epochs"] for r in runs] if len(runs) > 1 else runs[0]["epochs"],
        "best_epoch": [r["best_epoch"] for r in runs] if len(runs) > 1 else runs[0]["best_epoch"],
        "seed": runs[0]["seed"],
        "command": command,
        **({"config": runs[0]["config"]} if "config" in runs[0] else {}),
        "commit": ", ".join(dict.fromkeys(str(r["commit"]) for r in runs)),
        "date": datetime.date.today().isoformat(),
    }
    records = []
    valid = [r["valid_metrics"] for r in runs]
    for test_split in runs[0]["tests"]:
        name = split if protocol == "fixed" else test_split
        tests = [r["tests"][test_split] for r in runs]
        # a seed without validation scores: no mean to give (never one seed's under its name)
        record = dict(
            base,
            split=name,
            metrics=mean_metrics(tests),
            valid_metrics=mean_metrics(valid) if all(valid) else {},
        )
        if len(runs) > 1:
            record["per_seed"] = tests
            record["std"] = std_metrics(tests)
            record["se"] = se_metrics(tests)
            if all(valid):
                record["per_seed_valid"] = valid
            if split_seeds:
                record["split_seeds"] = list(split_seeds)
            elif protocol == "fixed":
                record["fixed_seeds"] = list(RANDOM_SEEDS)
            else:
                record["seeds"] = [r["seed"] for r in runs]
        records.append(record)
    return records


RECORD_DIRS = [
    f":(exclude){d}"
    for d in (
        "benchmarks/results",
        "benchmarks/tuning",
        "benchmarks/speed",
        "benchmarks/reproduce",
        "results",
    )
]


def code_version():
    """The commit the runs use (``+dirty`` with uncommitted changes), for provenance."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(  # changed code, not the records being written
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *RECORD_DIRS],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "") if rev else None
    except OSError:
        return None


def key(record):
    return (
        record["model"],
        record["dataset"],
        record["protocol"],
        record["split"],
        record.get("variant", ""),
    )


def update_records(out, merge, table):
    """Replace the records file ``out`` (a JSON list) by ``merge(its records)`` and its ``.md``
    by ``table(merged)``. Steps of a suite running side by side share these files: the
    read-merge-write holds an exclusive lock on the folder, and each file is replaced whole, so
    a reader never sees half of one and no step's records are lost."""
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(out.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        merged = merge(json.loads(out.read_text()) if out.exists() else [])
        for path, text in (
            (out, json.dumps(merged, indent=1) + "\n"),
            (out.with_suffix(".md"), table(merged)),
        ):
            partial = path.with_name(path.name + ".partial")
            partial.write_text(text)
            os.replace(partial, path)
    finally:
        os.close(folder)  # releases the lock


PROVENANCE = ("commit", "date")  # of the code and day that wrote a record


def without_provenance(record):
    """``record`` as its JSON file holds it, minus its provenance."""
    return json.loads(json.dumps({k: v for k, v in record.items() if k not in PROVENANCE}))


def same_but_provenance(a, b):
    """Whether two records differ at most in provenance (a rerun that reused every process
    gives such a record: the stored one is kept)."""
    return without_provenance(a) == without_provenance(b)


def save(records, out):
    def merge(existing):
        stored = [without_provenance(r) for r in existing]  # once per file, not per record
        fresh = [r for r in records if without_provenance(r) not in stored]
        new_keys = {key(r) for r in fresh}
        merged = [r for r in existing if key(r) not in new_keys] + fresh
        return sorted(
            merged,
            key=lambda r: (
                r["dataset"],
                r["protocol"],
                r["split"],
                r["model"],
                r.get("variant", ""),
            ),
        )

    update_records(out, merge, markdown_table)


def markdown_table(records):
    lines = []
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["protocol"], r["split"]), []).append(r)
    for (dataset, protocol, split), rows in groups.items():
        metrics = list(dict.fromkeys(m for r in rows for m in r["metrics"]))
        lines += [
            f"\n### {dataset} · {protocol} · {split}\n",
            "| model | " + " | ".join(metrics) + " | s/epoch | epochs | eval s | peak MB |",
            "|---" * (len(metrics) + 5) + "|",
        ]
        for r in rows:
            values = [
                f"{r['metrics'][m]:.4f}" + (f" ± {r['std'][m]:.4f}" if "std" in r else "")
                if m in r["metrics"]
                else ""
                for m in metrics
            ]
            name = r["model"] + (f" ({r['variant']})" if r.get("variant") else "")
            lines.append(
                f"| {name} | "
                + " | ".join(values)
                + f" | {r['epoch_seconds']} | {r['epochs']} | {r['eval_seconds']} "
                f"| {r['peak_mem_mb']:.0f} |"
            )
        notes = dict.fromkeys(f"- {r['model']}: {r['note']}" for r in rows if r.get("note"))
        lines += ([""] + list(notes)) if notes else []
    command_lines = sorted({r["command"] for r in records})
    return (
        "# Benchmark results\n\nTest-set metrics (RecBole's names); epochs and hyperparameters "
        "chosen on validation. Produced by:\n\n"
        + "\n".join(f"    {c}" for c in command_lines)
        + "\n"
        + "\n".join(lines)
        + "\n"
    )


def protocol_key(record):
    """A tuning record's key: model, dataset and protocol as given on the command line."""
    return record["model"], record["dataset"], record["protocol"]


def load_tuned(path):
    """{(model, dataset, protocol text): tuning record} of a tuning file (benchmarks/tune.py)."""
    if not path:
        return {}
    if not Path(path).exists():
        raise SystemExit(f"--tuned {path}: no such file (benchmarks/tune.py --out writes it)")
    return {protocol_key(r): r for r in json.loads(Path(path).read_text())}


def apply_tuning(config, tuning, overrides):
    """``config`` with the tuned setting; a key both tuned and set on the command line is an
    error."""
    if not tuning:
        return config
    clash = sorted(set(tuning["chosen"]) & set(overrides))
    if clash:
        raise SystemExit(
            f"{clash} are tuned ({tuning['model']} on {tuning['dataset']} {tuning['protocol']}) "
            "and also given with --set: drop one"
        )
    return dict(config, **tuning["chosen"])


def tuning_summary(tuning):
    """What a record says of its tuning: space, budget, chosen setting, validation metric."""
    keys = ("space", "algo", "trials", "chosen", "valid_metric", "valid_score", "draw", "command")
    return {k: tuning[k] for k in keys}


def model_config(settings, overrides, model, dataset):
    """A model's settings (every dataset, then this dataset's) under the --set overrides."""
    return dict(settings.get(model, {}), **settings.get(f"{dataset}/{model}", {}), **overrides)


def parse_settings(args):
    settings = yaml.safe_load(Path(args.settings).read_text()) if args.settings else {}
    overrides = {}
    for item in args.set or []:
        k, _, v = item.partition("=")
        overrides[k] = yaml.safe_load(v)
    return settings, overrides


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--suite",
        help="run the tables of benchmarks/suites/<SUITE>.yaml (tuning, then every "
        "draw), resuming what exists; the other options are the suite's",
    )
    parser.add_argument(
        "--tables", nargs="+", help="with --suite: only these of its tables (their names)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="with --suite: print its commands only"
    )
    parser.add_argument(
        "--status",
        action="store_true",
        help="with --suite: what each step's files already hold (trials, draws, process hours)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="with --suite: run this many steps side by side (each one process at a time; "
        "a step waits for its tuning), each step's output in results/logs/suite-<SUITE>-<k>.log",
    )
    parser.add_argument("--models", nargs="+")
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--protocols", nargs="+", default=["recbole"])
    parser.add_argument("--out")
    parser.add_argument(
        "--settings", help="yaml: {model: {key: value}, dataset/model: {...}} per-run config"
    )
    parser.add_argument("--set", nargs="*", help="key=value for every run")
    parser.add_argument(
        "--split-seeds",
        nargs="+",
        type=int,
        help="one run per split draw: split_seed = seed "
        "= each value (fixed:P=..-random: fixed_seed); the record holds the mean, std, standard "
        "error and each draw's test and validation metrics (per_seed, per_seed_valid)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        help="one run per seed of the model, on the protocol's "
        "one split (its split_seed); prefer --split-seeds for verdicts",
    )
    parser.add_argument(
        "--variant",
        help="label of a non-default setting (e.g. 'title-only content'): "
        "part of the record's key, so it does not replace the default's record",
    )
    parser.add_argument(
        "--tuned",
        help="tuning records (benchmarks/tune.py): a model tuned for the dataset and "
        "protocol runs its chosen setting, and its records hold the tuning",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse each process already finished with "
        "the same spec (its result is stored next to its log), e.g. seeds of a run cut short",
    )
    return parser


def record_specs(args, model, dataset, protocol_text):
    """The process specs (configs) that ``args`` gives for one record, as ``main`` runs them."""
    settings, overrides = parse_settings(args)
    protocol, split = parse_protocol(protocol_text)
    tuning = load_tuned(args.tuned).get((model, dataset, protocol_text))
    config = apply_tuning(model_config(settings, overrides, model, dataset), tuning, overrides)
    return run_specs(model, dataset, protocol, split, config, args.seeds, args.split_seeds), tuning


def main():
    parser = build_parser()
    args = parser.parse_args()
    if args.suite:
        from suite import run_suite

        return run_suite(args.suite, args.tables, args.dry_run, args.status, args.jobs)
    if not (args.models and args.datasets and args.out):
        parser.error("--models, --datasets and --out are required (or --suite)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0]))] + sys.argv[1:])
    for dataset in args.datasets:
        for protocol_text in args.protocols:
            protocol, split = parse_protocol(protocol_text)
            for model in args.models:
                specs, tuning = record_specs(args, model, dataset, protocol_text)
                try:
                    runs = [
                        run_process(model, dataset, spec, out.parent / "logs", args.resume)
                        for spec in specs
                    ]
                except RuntimeError as err:
                    print(f"SKIPPED {err}", flush=True)
                    continue
                records = records_for(
                    model, dataset, protocol, split, runs, command, args.variant, args.split_seeds
                )
                for r in records if tuning else []:
                    r["tuning"] = tuning_summary(tuning)
                save(records, out)
                for r in records:
                    print(
                        json.dumps(
                            {
                                k: r[k]
                                for k in (
                                    "model",
                                    "dataset",
                                    "protocol",
                                    "split",
                                    "metrics",
                                    "epoch_seconds",
                                    "epochs",
                                )
                            }
                        ),
                        flush=True,
                    )


if __name__ == "__main__":
    main()
