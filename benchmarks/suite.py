"""A suite of benchmark tables (benchmarks/suites/<name>.yaml) as the commands that make it:
for each table, dataset and protocol, each model is tuned (benchmarks/tune.py) and then run on
every draw with its chosen setting (benchmarks/run.py --tuned --split-seeds). Every command
resumes what exists, so running the suite again goes on where it stopped.

    python benchmarks/run.py --suite headline [--tables strong cold] [--dry-run]
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from recbole_hybrid.hyper import grid_size, params_file_for, read_space

HERE = Path(__file__).resolve().parent


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


def run_suite(name, tables=None, dry_run=False):
    """Run (or with ``dry_run`` print) every step of ``benchmarks/suites/<name>.yaml``."""
    path = HERE / "suites" / f"{name}.yaml"
    if not path.is_file():
        raise SystemExit(
            f"no suite {path}; suites: {sorted(p.stem for p in (HERE / 'suites').glob('*.yaml'))}"
        )
    commands = suite_commands(yaml.safe_load(path.read_text()), tables)
    for i, argv in enumerate(commands, 1):
        print(
            f"[suite {name} {i}/{len(commands)}] python " + " ".join(shlex.quote(a) for a in argv),
            flush=True,
        )
        if not dry_run:
            subprocess.run([sys.executable, *argv], cwd=HERE.parent, check=True)
