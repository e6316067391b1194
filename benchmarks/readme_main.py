"""The README's main command as a new user meets it: a fresh clone of the repository's HEAD, then
the command twice (the second run reuses the converted dataset and the cached pretraining). The
record holds each run's wall seconds, the machine's cores and load average before it, and the
validation and test metrics the run printed; benchmarks/report.py puts it in the README.

    python benchmarks/readme_main.py [--clone-dir ../readme-main-clone] \
        [--out benchmarks/speed/readme-main.json]

The clone sits beside the repository, so that the raw data is found at ../shared/data as in a
checkout. The installed package is not used: the command imports the clone's code.
"""

import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAIN_COMMAND = "python run_recbole_hybrid.py --model=MDCVAE --dataset=citeulike-a"
METRIC = re.compile(r"\('([\w@]+)', ([0-9.eE+-]+)\)")


def printed_metrics(output, label):
    """{metric: value} of the last line of ``output`` with ``label`` (RecBole's OrderedDict)."""
    lines = [line for line in output.splitlines() if label in line]
    if not lines:
        raise RuntimeError(f"the run printed no '{label}' line; its output ends:\n{output[-2000:]}")
    return {name: float(value) for name, value in METRIC.findall(lines[-1])}


def timed_run(clone):
    """One run of the main command in ``clone``: (seconds, load average before, output)."""
    load = round(os.getloadavg()[0], 2)
    argv = [sys.executable, *shlex.split(MAIN_COMMAND)[1:]]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=clone, capture_output=True, text=True)
    seconds = round(time.perf_counter() - start, 1)
    if done.returncode:
        raise RuntimeError(f"{MAIN_COMMAND} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    print(f"{MAIN_COMMAND}: {seconds} s (load average before: {load})", flush=True)
    return seconds, load, done.stdout + done.stderr


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clone-dir", default=str(REPO.parent / "readme-main-clone"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "speed" / "readme-main.json"))
    args = parser.parse_args()
    clone = Path(args.clone_dir)
    if clone.exists():
        shutil.rmtree(clone)
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    first, second = timed_run(clone), timed_run(clone)
    output = first[2]
    record = {
        "job": "readme-main",
        "command": MAIN_COMMAND,
        "seconds": first[0],
        "second_run_seconds": second[0],
        "load_before": [first[1], second[1]],
        "cores": os.cpu_count(),
        "valid": printed_metrics(output, "best valid"),
        "test": printed_metrics(output, "test result"),
        "made_by": "python benchmarks/readme_main.py",
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True
        ).stdout.strip(),
        "date": datetime.date.today().isoformat(),
    }
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record))
    shutil.rmtree(clone)


if __name__ == "__main__":
    main()
