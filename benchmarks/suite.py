"""A suite of benchmark tables (benchmarks/suites/<name>.yaml) as the commands that make it:
for each table, dataset and protocol, each model is tuned (benchmarks/tune.py) and then run on
every draw with its chosen setting (benchmarks/run.py --tuned --split-seeds). Every command
resumes what exists, so running the suite again goes on where it stopped.

    python benchmarks/run.py --suite headline [--tables strong cold] [--dry-run | --status]
    python benchmarks/run.py --suite headline --jobs 3      # three steps side by side

``--status`` reads, for each step, what its files already hold (trials, draws, the training
snapshots of processes under way or interrupted) and the process seconds they took, without
running anything.
"""

import glob
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from recbole_hybrid.hyper import grid_size, params_file_for, read_space

HERE = Path(__file__).resolve().parent
STATUS_KEYS = ("--model", "--models", "--dataset", "--datasets", "--protocol", "--protocols")


def search_args(space_file, budget, whole_grid=False):
    """The whole grid when it fits the budget (or ``whole_grid``), else a seeded random search of
    ``budget`` distinct settings."""
    if whole_grid or grid_size(read_space(space_file)) <= budget:
        return ["--algo", "exhaustive"]
    return ["--algo", "random", "--max-evals", str(budget)]


def repo_path(path):
    """``path`` relative to the repository (commands in records name files from its root)."""
    return os.path.relpath(path, HERE.parent)


def suite_commands(suite, tables=None):
    """[argv] of every step of ``suite`` (the parsed yaml; only the tables named in ``tables``),
    in the order they run."""
    commands = []
    draws = [str(d) for d in suite["split_seeds"]]
    unknown = set(tables or []) - {t["name"] for t in suite["tables"]}
    if unknown:
        raise SystemExit(
            f"no table {sorted(unknown)} in the suite: {[t['name'] for t in suite['tables']]}"
        )
    for table in suite["tables"]:
        if tables and table["name"] not in tables:
            continue
        settings = ["--settings", table["settings"]] if table.get("settings") else []
        for dataset in table["datasets"]:
            for protocol in table["protocols"]:
                for model in table["models"]:
                    tuned = model not in suite.get("untuned", [])
                    if tuned:
                        space = table.get("spaces", {}).get(model) or repo_path(
                            params_file_for(model)
                        )
                        search = search_args(
                            HERE.parent / space,
                            suite["budget"],
                            model in suite.get("whole_grid", []),
                        )
                        commands.append(
                            [
                                "benchmarks/tune.py",
                                "--model",
                                model,
                                "--dataset",
                                dataset,
                                "--protocol",
                                protocol,
                                *settings,
                                "--params-file",
                                space,
                                *search,
                                "--out",
                                table["tuning"],
                                "--resume",
                            ]
                        )
                    commands.append(
                        [
                            "benchmarks/run.py",
                            "--models",
                            model,
                            "--datasets",
                            dataset,
                            "--protocols",
                            protocol,
                            *settings,
                            *(["--tuned", table["tuning"]] if tuned else []),
                            "--split-seeds",
                            *draws,
                            "--out",
                            table["out"],
                            "--resume",
                        ]
                    )
    return commands


def process_seconds(result):
    """Seconds of one finished process: its CPU time; older results without it: the wall-clock
    seconds of build, fit and test evaluation (longer where processes shared cores), and
    without ``fit_seconds`` either: epochs x (epoch + validation seconds)."""
    if result.get("cpu_seconds") is not None:
        return result["cpu_seconds"]
    fit = result.get("fit_seconds")
    if fit is None:
        fit = (result.get("epochs") or 1) * (
            (result.get("epoch_seconds") or 0) + (result.get("valid_seconds") or 0)
        )
    return (result.get("build_seconds") or 0) + fit + (result.get("eval_seconds") or 0)


def under_way(snapshots):
    """``, k under way (epochs a, b done)``: the processes whose training snapshots (run_one.py)
    are ``snapshots`` - running, or interrupted and resumed by the next ``--resume``."""
    if not snapshots:
        return ""
    import torch

    epochs = [  # mmap: the small pickled part is read, not the weights
        torch.load(path, map_location="cpu", mmap=True, weights_only=False)["epoch"] + 1
        for path in sorted(snapshots)
    ]
    return f", {len(epochs)} under way (epochs {', '.join(map(str, epochs))} done)"


def option(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


def tuning_status(argv):
    """(done, text, seconds) of a tune.py step: its record, else the trials finished so far."""
    import run

    model, dataset = option(argv, "--model"), option(argv, "--dataset")
    protocol_text = option(argv, "--protocol")
    out = HERE.parent / option(argv, "--out")
    record = run.load_tuned(out).get((model, dataset, protocol_text)) if out.exists() else None
    settings_file = option(argv, "--settings")
    settings = yaml.safe_load((HERE.parent / settings_file).read_text()) if settings_file else {}
    protocol, split = run.parse_protocol(protocol_text)
    config = run.model_config(settings, {}, model, dataset)
    [spec] = run.run_specs(model, dataset, protocol, split, config, split_seeds=[0])
    prefix = run.process_tag(model, dataset, spec, test=False).rsplit("-", 1)[0] + "-"
    results = [
        json.loads(f.read_text())["result"]
        for f in (HERE / "results" / "logs").glob(f"{glob.escape(prefix)}*.json")
    ]
    seconds = sum(process_seconds(r) for r in results)
    budget = option(argv, "--max-evals") or grid_size(
        read_space(HERE.parent / option(argv, "--params-file"))
    )
    if record:
        return True, f"tuned, {record['trials']} trials", seconds
    snapshots = (HERE / "results" / "logs").glob(f"{glob.escape(prefix)}*{run.SNAPSHOT_SUFFIX}")
    return False, f"{len(results)} of {budget} trials" + under_way(list(snapshots)), seconds


def step_processes(argv):
    """The processes of a run.py step, one per draw: [(model, dataset, config, its files' path
    without suffix)], or None while the step waits for its tuning."""
    import run

    args = run.build_parser().parse_args(argv[1:])
    [model], [dataset], [protocol_text] = args.models, args.datasets, args.protocols
    for name in ("settings", "tuned", "out"):  # files named from the repository's root
        if getattr(args, name):
            setattr(args, name, str(HERE.parent / getattr(args, name)))
    if args.tuned and (model, dataset, protocol_text) not in (
        run.load_tuned(args.tuned) if Path(args.tuned).exists() else {}
    ):
        return None
    configs, _ = run.record_specs(args, model, dataset, protocol_text)
    logs = Path(args.out).parent / "logs"  # where run.py keeps them
    return [(model, dataset, c, logs / run.process_tag(model, dataset, c)) for c in configs]


def draws_status(argv):
    """(done, text, seconds) of a run.py step: the draws whose process finished."""
    import run

    processes = step_processes(argv)
    if processes is None:
        return False, "waits for its tuning", 0.0
    results, snapshots = [], []
    for model, dataset, config, tag in processes:
        stored = run.cached_result(Path(f"{tag}.json"), run.process_spec(model, dataset, config))
        if stored is not None:
            results.append(stored)
        elif (snapshot := Path(f"{tag}{run.SNAPSHOT_SUFFIX}")).exists():
            snapshots.append(snapshot)
    seconds = sum(process_seconds(r) for r in results)
    text = f"{len(results)} of {len(processes)} draws" + under_way(snapshots)
    return len(results) == len(processes), text, seconds


def suite_spec(name):
    """``benchmarks/suites/<name>.yaml`` as data."""
    path = HERE / "suites" / f"{name}.yaml"
    if not path.is_file():
        raise SystemExit(
            f"no suite {path}; suites: {sorted(p.stem for p in (HERE / 'suites').glob('*.yaml'))}"
        )
    return yaml.safe_load(path.read_text())


def load_suite(name, tables=None):
    """The commands of ``benchmarks/suites/<name>.yaml`` (``suite_commands``)."""
    return suite_commands(suite_spec(name), tables)


def suite_tables(name):
    """{(dataset, protocol)} of a suite's tables, a protocol as the suite writes it
    (``cold``, ``fixed:P=1-random``)."""
    tables = suite_spec(name)["tables"]
    return {(d, p) for t in tables for d in t["datasets"] for p in t["protocols"]}


def step_status(argv):
    """(done, text, seconds) of one step (``tuning_status`` / ``draws_status``)."""
    return (tuning_status if argv[0] == "benchmarks/tune.py" else draws_status)(argv)


def suite_progress(name):
    """(steps done, steps, process seconds so far) of a whole suite."""
    statuses = [step_status(argv) for argv in load_suite(name)]
    return sum(s[0] for s in statuses), len(statuses), sum(s[2] for s in statuses)


def waits_for(commands):
    """{step: the step it waits for}: each run.py step with ``--tuned`` waits for the tune.py
    step of its model, dataset and protocol."""
    tunings = {
        (option(argv, "--model"), option(argv, "--dataset"), option(argv, "--protocol")): i
        for i, argv in enumerate(commands)
        if argv[0] == "benchmarks/tune.py"
    }
    return {
        i: tunings[
            (option(argv, "--models"), option(argv, "--datasets"), option(argv, "--protocols"))
        ]
        for i, argv in enumerate(commands)
        if argv[0] == "benchmarks/run.py" and "--tuned" in argv
    }


def start_step(argv, log_file):
    """The process of one step, its output in ``log_file``."""
    with open(log_file, "a") as log:
        return subprocess.Popen(
            [sys.executable, *argv], cwd=HERE.parent, stdout=log, stderr=subprocess.STDOUT
        )


def run_side_by_side(name, commands, jobs, start=start_step, poll_seconds=5.0):
    """Run the steps ``jobs`` at a time, in the suite's order as far as each step's tuning
    allows (``waits_for``); each step's output goes to its own log. A failed step's dependants
    are skipped, the others go on. Returns the number of failed or skipped steps."""
    after = waits_for(commands)
    pending, running, done, failed = list(range(len(commands))), {}, set(), set()
    logs = HERE / "results" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    say = lambda i, what: print(f"[suite {name} {i + 1}/{len(commands)}] {what}", flush=True)
    while pending or running:
        for i in list(pending):
            if after.get(i) in failed:
                pending.remove(i)
                failed.add(i)
                say(i, f"skipped: step {after[i] + 1} (its tuning) failed")
            elif len(running) < jobs and (i not in after or after[i] in done):
                pending.remove(i)
                log_file = logs / f"suite-{name}-{i + 1}.log"
                running[i] = start(commands[i], log_file)
                say(
                    i,
                    "started: python "
                    + " ".join(map(shlex.quote, commands[i]))
                    + f"  [log: {log_file}]",
                )
        time.sleep(poll_seconds if running else 0)
        for i, process in list(running.items()):
            if process.poll() is not None:
                del running[i]
                (done if process.returncode == 0 else failed).add(i)
                say(i, "done" if process.returncode == 0 else f"failed (exit {process.returncode})")
    return len(failed)


def run_suite(name, tables=None, dry_run=False, status=False, jobs=1):
    """Run (or with ``dry_run`` print, with ``status`` report) every step of
    ``benchmarks/suites/<name>.yaml``; ``jobs`` > 1: that many steps side by side."""
    commands = load_suite(name, tables)
    if jobs > 1 and not (dry_run or status):
        failed = run_side_by_side(name, commands, jobs)
        if failed:
            raise SystemExit(f"suite {name}: {failed} steps failed or skipped (see their logs)")
        return
    done, total_seconds = 0, 0.0
    for i, argv in enumerate(commands, 1):
        head = f"[suite {name} {i}/{len(commands)}]"
        if status:
            finished, text, seconds = step_status(argv)
            done, total_seconds = done + finished, total_seconds + seconds
            what = " ".join(argv[argv.index(k) + 1] for k in argv if k in STATUS_KEYS)
            print(f"{head} {argv[0]} {what}: {text}, {seconds / 3600:.2f} h", flush=True)
            continue
        print(f"{head} python " + " ".join(shlex.quote(a) for a in argv), flush=True)
        if not dry_run:
            subprocess.run([sys.executable, *argv], cwd=HERE.parent, check=True)
    if status:
        print(
            f"{done} of {len(commands)} steps done; their finished processes took "
            f"{total_seconds / 3600:.1f} h (CPU time, or wall-clock for older records)"
        )
