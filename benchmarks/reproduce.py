"""Do a suite's records give the same numbers at today's code?

    python benchmarks/reproduce.py --suite headline [--tables strong cold] [--models EASE]
        [--draw 0] [--max-minutes 10] [--out benchmarks/reproduce/headline.json] [--resume]
        [--rerun]

For each record of the suite (each run.py step), the stored process of draw ``--draw`` is run
again at today's code, from scratch in a scratch folder: no stored result, training snapshot or
pretraining cache is reused. Its test and validation metrics are compared with the stored ones
exactly, as stored (rounded to four decimals). A process whose stored run took more than
``--max-minutes`` of CPU is left out and listed. Processes run with the suite's thread count
(run.py: one, unless OMP_NUM_THREADS says otherwise). The checks go to ``--out`` and its
``.md``; ``--resume`` keeps a check made of the same stored result under the same code (the
package's digest, run_one.code_digest: comments and docstrings aside). Exits 1 when a process
gives other numbers.

``--rerun`` mends a record whose draw gave other numbers: its stored draws are removed and its
run.py step runs again at today's code (its tuning kept). The rerun draw must then give exactly
the numbers the check's own run gave (two runs at today's code); the check is updated to say so.
"""

import argparse
import datetime
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import run
import suite
from run_one import code_digest
from stale import held_numbers, protocol_text, record_label, test_label
from suite import load_suite, option, process_seconds, step_processes

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "reproduce" / "{suite}.json"


def differences(stored, rerun):
    """{where: {metric: [stored, rerun]}} of every stored metric that is not the same, over the
    test splits and validation (one missing from the rerun counts; one the process records
    since the stored run, such as ``tied_users``, is not compared)."""
    before, after = labelled_numbers(stored), labelled_numbers(rerun)
    found = {}
    for where, a in before.items():
        b = after.get(where, {})
        diff = {k: [a[k], b.get(k)] for k in sorted(a) if a[k] != b.get(k)}
        if diff:
            found[where] = diff
    return found


def labelled_numbers(result):
    """A process result's metrics by where a check names them: {"test": ..., "test cold": ...,
    "validation": ...} (the result's own dicts, not copies)."""
    numbers = {test_label(name): m for name, m in result["tests"].items()}
    numbers["validation"] = result["valid_metrics"]
    return numbers


def result_digest(result):
    """Which stored result a check was made of (a rerun record replaces it)."""
    metrics = [result["tests"], result["valid_metrics"]]
    return hashlib.sha1(json.dumps(metrics, sort_keys=True).encode()).hexdigest()[:12]


def metric_count(result):
    return sum(len(m) for m in result["tests"].values()) + len(result["valid_metrics"])


def check(model, dataset, config, stored, scratch, failed_log):
    """Run the process of ``config`` again in ``scratch``; compare with ``stored``, its result.
    A process that fails or differs leaves its log at ``failed_log``."""
    config = dict(config, checkpoint_dir=str(scratch / "saved"))  # no pretraining cache
    try:
        rerun = run.run_process(model, dataset, config, scratch, resume=False)
        entry = {
            "stored_commit": stored.get("commit"),
            "stored_cpu_seconds": round(process_seconds(stored), 1),
            "commit": rerun["commit"],
            "cpu_seconds": round(process_seconds(rerun), 1),
            "threads": rerun.get("threads"),
            "metrics": metric_count(stored),
            "differences": differences(stored, rerun),
        }
    except RuntimeError as err:  # the process failed: its log's last line
        entry = {"stored_commit": stored.get("commit"), "error": str(err)}
    if gave_other_numbers(entry):
        failed_log.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scratch / f"{run.process_tag(model, dataset, config)}.log", failed_log)
    return entry


def chosen_processes(name, tables, models, draw):
    """[(model, dataset, config, stored result or None, run.py step)] of draw ``draw`` of each
    record of the suite (its run.py steps whose tuning is done)."""
    chosen = []
    for argv in load_suite(name, tables):
        if argv[0] != "benchmarks/run.py" or (models and option(argv, "--models") not in models):
            continue
        processes = step_processes(argv)
        if processes is None or draw >= len(processes):
            continue
        model, dataset, config, _ = processes[draw]
        chosen.append((model, dataset, config, stored_result(processes[draw]), argv))
    return chosen


def stored_result(process):
    model, dataset, config, tag = process
    return run.cached_result(Path(f"{tag}.json"), run.process_spec(model, dataset, config))


def rerun_record(argv, draw, stored, entry):
    """Run the record of run.py step ``argv`` again at today's code, its stored draws removed;
    ``entry``, the check that found draw ``draw`` gave other numbers, then compares the rerun
    draw with the numbers the check's own run gave."""
    processes = step_processes(argv)
    for *_, tag in processes:
        Path(f"{tag}.json").unlink(missing_ok=True)
        run.discard(Path(f"{tag}{run.SNAPSHOT_SUFFIX}"))
    print(f"[rerun] its stored draws removed; python {shlex.join(argv)}", flush=True)
    step = [sys.executable, str(HERE / "run.py"), *argv[1:]]
    if subprocess.run(step, cwd=suite.HERE.parent).returncode != 0:
        raise SystemExit(
            f"[rerun] the step failed; the record's stored draws are removed, so it is missing "
            f"until this finishes: python {shlex.join(argv)}"
        )
    rerun = stored_result(processes[draw])
    return dict(
        entry,
        stored_commit=rerun.get("commit"),
        stored_cpu_seconds=round(process_seconds(rerun), 1),
        differences=differences(checked_numbers(stored, entry), rerun),
        rerun_of=entry["stored_commit"],
        stored_digest=result_digest(rerun),
    )


def checked_numbers(stored, entry):
    """The metrics the check's own run gave: the stored ones, those that differed replaced."""
    numbers = json.loads(json.dumps({k: stored[k] for k in ("tests", "valid_metrics")}))
    where = labelled_numbers(numbers)
    for place, metrics in entry["differences"].items():
        where[place].update({k: rerun for k, (_, rerun) in metrics.items()})
    return numbers


def left_out(argv, draw, stored, max_minutes):
    """Why draw ``draw`` of run.py step ``argv`` is not checked, or None."""
    if stored is None:
        return "not run yet"
    if record_lags(argv, draw, stored):
        return "its record is being rerun (it holds other numbers than the stored draw)"
    minutes = process_seconds(stored) / 60
    return f"its run took {minutes:.0f} CPU minutes" if minutes > max_minutes else None


def record_lags(argv, draw, stored):
    """Whether a record of run.py step ``argv`` holds other numbers for draw ``draw`` than its
    stored process: its draws are being rerun, and run.py rewrites the record only when its
    last draw is done. A check now would be of numbers the record does not show."""
    out = suite.HERE.parent / option(argv, "--out")
    step = (option(argv, "--models"), option(argv, "--datasets"), option(argv, "--protocols"))
    mine = labelled_numbers(stored)
    for record in json.loads(out.read_text()) if out.exists() else []:
        if (record["model"], record["dataset"], protocol_text(record)) != step:
            continue
        if draw < len(record.get("per_seed") or [record["metrics"]]):
            held = held_numbers(record, draw)
            if any(held[where] != mine.get(where) for where in held):
                return True
    return False


def label(model, dataset, config):
    split = config.get("fixed_split")
    return record_label(model, dataset, config["protocol"] + (f":{split}" if split else ""))


def gave_other_numbers(entry):
    """A check whose rerun failed or gave other numbers."""
    return bool(entry.get("differences") or "error" in entry)


def load_checks(name):
    path = Path(str(DEFAULT_OUT).format(suite=name))
    return json.loads(path.read_text()) if path.exists() else []


def verdict_text(entry):
    if "error" in entry:
        return f"**failed**: {entry['error']}"
    diffs = entry["differences"]
    if "rerun_of" in entry:  # the record rerun at today's code, after the check
        return f"rerun (was {entry['rerun_of']}): " + verdict_text(
            {k: v for k, v in entry.items() if k != "rerun_of"}
        )
    if not diffs:
        return f"same ({entry['metrics']} metrics)"
    n = sum(len(d) for d in diffs.values())
    where, metric, (a, b) = max(
        ((w, k, ab) for w, d in diffs.items() for k, ab in d.items()),
        key=lambda x: abs((x[2][0] or 0) - (x[2][1] or 0)),
    )
    return f"**differs**: {n} of {entry['metrics']} metrics, e.g. {where} {metric} {a} -> {b}"


def markdown(entries, skipped, command):
    lines = [
        "# Reproduction check",
        "",
        f"Generated by `{command}` (benchmarks/reproduce.py): each record's process run again "
        "from scratch at the commit shown and its metrics compared exactly with the stored ones.",
        "",
        "| process | draw | stored at | CPU min (stored / again) | threads | result |",
        "|---|---|---|---|---|---|",
    ]
    for e in entries:
        minutes = " / ".join(
            f"{e[k] / 60:.1f}" if k in e else "-" for k in ("stored_cpu_seconds", "cpu_seconds")
        )
        lines.append(
            f"| {e['process']} | {e['draw']} | {e['stored_commit']} | {minutes} | "
            f"{e.get('threads', '-')} | {verdict_text(e)} (at {e['commit']}, {e['date']}) |"
        )
    if skipped:
        lines += ["", "Not checked:", ""] + [f"- {s}" for s in skipped]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", required=True, help="benchmarks/suites/<SUITE>.yaml")
    parser.add_argument("--tables", nargs="+", help="only these of its tables")
    parser.add_argument("--models", nargs="+", help="only these models")
    parser.add_argument("--draw", type=int, default=0, help="which draw of each record (index)")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=10.0,
        help="leave out processes whose stored run took more CPU minutes",
    )
    parser.add_argument("--out", help=f"default: {DEFAULT_OUT.relative_to(HERE.parent)}")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the checks made of the same stored result under the same code",
    )
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="rerun each record whose draw gave other numbers (its stored draws removed)",
    )
    args = parser.parse_args(argv)
    out = Path(args.out or str(DEFAULT_OUT).format(suite=args.suite))
    given = sys.argv[1:] if argv is None else argv
    command = "python " + " ".join(map(shlex.quote, ["benchmarks/reproduce.py", *given]))
    entries = {e["tag"]: e for e in (json.loads(out.read_text()) if out.exists() else [])}
    today, code, skipped, checked = run.code_version(), code_digest(), [], []
    chosen = chosen_processes(args.suite, args.tables, args.models, args.draw)
    for i, (model, dataset, config, stored, argv) in enumerate(chosen, 1):
        name, tag = label(model, dataset, config), run.process_tag(model, dataset, config)
        head = f"[reproduce {i}/{len(chosen)}] {name} draw {args.draw}"
        why = left_out(argv, args.draw, stored, args.max_minutes)
        if why:
            skipped.append(f"{name}: draw {args.draw} {why}")
            print(f"{head}: left out ({why})", flush=True)
            continue
        checked.append(tag)
        same = {"code": code, "stored_digest": result_digest(stored)}
        if args.resume and same.items() <= entries.get(tag, {}).items():
            print(f"{head}: checked already under this code", flush=True)
        else:
            minutes = process_seconds(stored) / 60
            print(f"{head}: running again (stored run: {minutes:.1f} CPU minutes)", flush=True)
            with tempfile.TemporaryDirectory(prefix="reproduce-") as scratch:
                log = out.parent / "logs" / f"{tag}.log"
                entry = check(model, dataset, config, stored, Path(scratch), log)
            entry.update(process=name, draw=args.draw, tag=tag, date=str(datetime.date.today()))
            entries[tag] = dict(entry, commit=entry.get("commit", today), **same)
            print(f"{head}: {verdict_text(entries[tag])}", flush=True)
            write(out, entries, skipped, command)
        if args.rerun and entries[tag].get("differences"):
            entries[tag] = rerun_record(argv, args.draw, stored, entries[tag])
            print(f"{head}: rerun, {verdict_text(entries[tag])}", flush=True)
            write(out, entries, skipped, command)
    write(out, entries, skipped, command)
    return int(any(gave_other_numbers(entries[t]) for t in checked))


def write(out, entries, skipped, command):
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(list(entries.values()), indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(list(entries.values()), skipped, command))


if __name__ == "__main__":
    sys.exit(main())
