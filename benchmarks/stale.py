"""Does a record's command still run the setting it recorded?

A record made by benchmarks/run.py stores the resolved config of its first process
(``config``). Its command is parsed again and resolved at today's code and yaml: any recorded
key whose value differs, or that no longer exists, makes the record *stale* (its command no
longer reproduces it; a renamed key is compared under its new name); keys added since are not
compared (a new option defaults to the behaviour before it). A command naming a key that no
longer exists is stale too. A record without a stored config (made before records kept one)
whose command still resolves is *unverified*: nothing says its setting is today's. A record
whose draw gave other numbers when run again at a later code (benchmarks/reproduce.py) is stale
too, until it is rerun.
"""

import contextlib
import io
import json
import shlex
from pathlib import Path
from functools import lru_cache

from run import build_parser, record_specs
from run_one import config_for

from recbole_hybrid import renamed_keys
from recbole_hybrid.config import check_known_keys, resolved_config

CURRENT, STALE, UNVERIFIED = "current", "stale", "unverified"
MISSING = "(no such key today)"
REPO = Path(__file__).resolve().parents[1]


def protocol_text(record):
    return f"fixed:{record['split']}" if record["protocol"] == "fixed" else record["protocol"]


def first_spec(record):
    """(model, dataset, config) of the record's first process, as its command gives it today."""
    argv = shlex.split(record["command"])
    script = next((i for i, a in enumerate(argv) if a.endswith("run.py")), None)
    if script is None:
        raise LookupError("not made by benchmarks/run.py")
    with contextlib.redirect_stderr(io.StringIO()):  # argparse's usage message: the reason says it
        args = build_parser().parse_args(argv[script + 1 :])
    for name in ("settings", "tuned"):  # commands name their files from the repository's root
        if getattr(args, name):
            setattr(args, name, str(REPO / getattr(args, name)))
    specs, _ = record_specs(args, record["model"], record["dataset"], protocol_text(record))
    return specs[0]


@lru_cache(maxsize=None)
def _resolve(model, dataset, config_json):
    return resolved_config(
        config_for({"model": model, "dataset": dataset, "config": json.loads(config_json)})
    )


def check(record):
    """(state, reason): CURRENT, STALE or UNVERIFIED, and why (None when current)."""
    try:
        config = first_spec(record)
        check_known_keys(config, "its command")
    except ValueError as err:  # a key no yaml declares any more
        return STALE, str(err).split(" (every key")[0]
    except (LookupError, SystemExit, OSError) as err:
        return UNVERIFIED, f"its command does not parse as benchmarks/run.py's ({err or 'usage'})"
    if "config" not in record:
        return UNVERIFIED, "made before records stored their resolved config"
    today = _resolve(record["model"], record["dataset"], json.dumps(config, sort_keys=True))
    # a key today's code added is not compared: a new option defaults to the behaviour before it
    recorded = renamed_keys.upgrade(
        record["config"]
    )  # a renamed key is compared under its new name
    changed = sorted(k for k in recorded if today.get(k, MISSING) != recorded[k])
    if changed:
        return STALE, "its command now resolves " + ", ".join(
            f"{k} to {today.get(k, MISSING)!r} (recorded {recorded[k]!r})" for k in changed[:3]
        ) + (f" and {len(changed) - 3} more keys" if len(changed) > 3 else "")
    return CURRENT, None


def record_label(model, dataset, protocol):
    """A record's (and its processes') name in reproduction checks: ``EASE citeulike-a strong``,
    ``CVAE citeulike-a fixed:P=1-random``."""
    return f"{model} {dataset} {protocol}"


def test_label(split):
    """A test split's name in a reproduction check: test, test +F, test cold."""
    return split if split == "test" else f"test {split}"


def held_numbers(record, draw):
    """The metrics ``record`` holds for draw ``draw``, named as in a reproduction check:
    {"test" (or "test cold", "test +F"...): ..., "validation": ...}."""
    test = (record.get("per_seed") or [record["metrics"]])[draw]
    valid = (record.get("per_seed_valid") or [record.get("valid_metrics", {})])[draw]
    split = "test" if record["protocol"] == "fixed" else record["split"]
    return {test_label(split): test, "validation": valid}


def unreproduced(record, checks):
    """The reason ``record`` is stale by a reproduction check (benchmarks/reproduce.py) whose
    rerun of one of its draws gave other numbers, while the record still holds that draw's
    stored numbers; else None."""
    label = record_label(record["model"], record["dataset"], protocol_text(record))
    for c in checks:
        if c["process"] != label or not c.get("differences"):
            continue
        draw = c["draw"]
        held = held_numbers(record, draw)
        mine = {w: d for w, d in c["differences"].items() if w in held}
        if mine and all(held[w].get(k) == a for w, d in mine.items() for k, (a, _) in d.items()):
            where, diffs = next(iter(mine.items()))
            metric, (a, b) = next(iter(diffs.items()))
            return (
                f"its draw {draw} gives other numbers at {c['commit']} ({where} {metric} {a} -> "
                f"{b}; benchmarks/reproduce/): rerun it"
            )
    return None
