"""Shared helpers for the converters: reading the raw `.dat` files, writing
RecBole atomic files, checking raw directories, and the build stamp that tells
`ensure_atomic` whether the atomic files are up to date.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

STAMP_NAME = ".build-stamp.json"
INTER_HEADER = ("user_id:token", "item_id:token")


# ---------------------------------------------------------------- reading
class StageLog:
    """A converter's progress on stderr (a build takes minutes): ``stage(text)`` when a step
    starts, ``epoch(stage, done, total)`` for an iterative step (``train_doc2vec``'s report),
    each line with the seconds since the build started."""

    def __init__(self, name: str):
        self.name, self.started = name, time.perf_counter()

    def say(self, text: str) -> None:
        seconds = time.perf_counter() - self.started
        print(f"{self.name}: {text} ({seconds:.0f} s)", file=sys.stderr, flush=True)

    def stage(self, text: str) -> None:
        self.say(text + " ...")

    def epoch(self, stage: str, done: int, total: int, loss=None) -> None:
        if done:
            self.say(f"{stage} epoch {done}/{total}")


def read_lines(path: Path) -> list[str]:
    """Lines of a text file without line ends (a missing final newline is fine)."""
    lines = Path(path).read_text(encoding="utf8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def parse_count_line(line: str, path: Path, line_no: int) -> list[str]:
    """`n a b c ...` -> [a, b, c, ...], checking that n matches."""
    parts = line.split()
    if not parts or int(parts[0]) != len(parts) - 1:
        raise ValueError(f"{path}:{line_no + 1}: count does not match: {line[:80]!r}")
    return parts[1:]


def read_id_lists(path: Path) -> list[np.ndarray]:
    """A `n id id ...` file (users.dat, cf-*-users.dat, item-tag.dat) as int arrays."""
    return [
        np.array(parse_count_line(line, path, i), dtype=np.int64)
        for i, line in enumerate(read_lines(path))
    ]


# ---------------------------------------------------------------- writing
def write_atomic_file(path: Path, columns: Mapping[str, Sequence[str]]) -> int:
    """Write a tab-separated atomic file; `columns` maps `field:type` -> string values.

    Returns the number of data rows.
    """
    headers = list(columns)
    values = [columns[header] for header in headers]
    n_rows = len(values[0]) if values else 0
    if any(len(column) != n_rows for column in values):
        raise ValueError(f"{path}: columns of different lengths")
    for column in values:
        if any("\t" in cell or "\n" in cell or cell.startswith('"') for cell in column):
            raise ValueError(f"{path}: a cell holds a tab, newline or leading quote")
    with open(path, "w", encoding="utf8", newline="\n") as out:
        out.write("\t".join(headers) + "\n")
        out.writelines("\t".join(row) + "\n" for row in zip(*values))
    return n_rows


def user_item_pairs(items_by_user: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-user item lists -> parallel (user, item) arrays."""
    lengths = [len(items) for items in items_by_user]
    users = np.repeat(np.arange(len(items_by_user)), lengths)
    items = np.concatenate(items_by_user) if items_by_user else np.array([], dtype=np.int64)
    return users, items.astype(np.int64)


def write_inter(path: Path, items_by_user: Sequence[np.ndarray]) -> int:
    """`user_id:token  item_id:token`, one row per pair, users in id order."""
    users, items = user_item_pairs(items_by_user)
    with open(path, "w", encoding="utf8", newline="\n") as out:
        out.write("\t".join(INTER_HEADER) + "\n")
        out.writelines(f"{user}\t{item}\n" for user, item in zip(users.tolist(), items.tolist()))
    return len(users)


def required_token(row: dict, field: str, where: str) -> str:
    """A non-empty id of a raw record usable as a RecBole token; ValueError naming file:line and
    field."""
    value = row.get(field)
    if value is None or not str(value).strip():
        raise ValueError(f"{where}: field [{field}] is missing or empty: {value!r}")
    value = str(value).strip()
    if any(ch.isspace() for ch in value) or value.startswith('"'):
        raise ValueError(f"{where}: field [{field}] holds whitespace or a leading quote: {value!r}")
    return value


def number_field(row: dict, field: str, where: str) -> float:
    """A finite number of a raw record (a number or its text); ValueError naming file:line and
    field."""
    value = row.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}: field [{field}] is not a number: {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where}: field [{field}] is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{where}: field [{field}] is not a finite number: {value!r}")
    return number


def join_tokens(tokens: Iterable[str]) -> str:
    """A `token_seq` cell: tokens joined by RecBole's default seq_separator (a space)."""
    return " ".join(tokens)


# ---------------------------------------------------------------- dataset specs
@dataclass(frozen=True)
class RawSpec:
    """What `ensure_atomic` needs to know about a dataset besides its converter."""

    name: str  # dataset name (RecBole's `dataset`, the output dir)
    raw_subdir: str  # folder under the raw data root
    raw_files: tuple[str, ...]  # relative to raw_subdir; fingerprinted in the stamp
    sources: str  # where to download them


# ---------------------------------------------------------------- raw dir checks
def missing_files(raw_dir: Path, required: Iterable[str]) -> list[str]:
    """The required relative paths that are not files under raw_dir."""
    return [name for name in required if not (Path(raw_dir) / name).is_file()]


# ---------------------------------------------------------------- build stamp
def file_fingerprint(path: Path, with_hash: bool = True) -> dict:
    """Size, mtime (ns) and optionally sha256 of a file."""
    stat = Path(path).stat()
    info = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if with_hash:
        info["sha256"] = sha256_of(path)
    return info


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_stamp(
    raw_dir: Path, raw_files: Sequence[str], version: int, outputs: Sequence[str]
) -> dict:
    return {
        "converter_version": version,
        "raw_dir": str(Path(raw_dir).resolve()),
        "raw_files": {name: file_fingerprint(Path(raw_dir) / name) for name in raw_files},
        "outputs": sorted(outputs),
    }


def write_stamp(out_dir: Path, stamp: dict) -> None:
    (Path(out_dir) / STAMP_NAME).write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n")


def read_stamp(out_dir: Path) -> dict | None:
    try:
        return json.loads((Path(out_dir) / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None


def _raw_file_unchanged(path: Path, recorded: dict) -> bool:
    """Same size and mtime -> unchanged; same size, new mtime -> compare hashes."""
    if not path.is_file():
        return False
    current = file_fingerprint(path, with_hash=False)
    if current["size"] != recorded.get("size"):
        return False
    if current["mtime_ns"] == recorded.get("mtime_ns"):
        return True
    return sha256_of(path) == recorded.get("sha256")


def stale_reason(
    out_dir: Path, raw_dir: Path, raw_files: Sequence[str], version: int
) -> str | None:
    """Why the atomic files in out_dir must be (re)built, or None if they are fresh."""
    stamp = read_stamp(out_dir)
    if stamp is None:
        return "first use"
    if stamp.get("converter_version") != version:
        return f"converter version {stamp.get('converter_version')} -> {version}"
    recorded = stamp.get("raw_files", {})
    if sorted(recorded) != sorted(raw_files):
        return "different raw file list"
    changed = [
        name for name in raw_files if not _raw_file_unchanged(Path(raw_dir) / name, recorded[name])
    ]
    if changed:
        return "raw files changed: " + ", ".join(changed)
    if any(not (Path(out_dir) / name).is_file() for name in stamp.get("outputs", [])):
        return "atomic files missing"
    return None


def output_fingerprints(out_dir: Path) -> dict:
    """{name: size and mtime} of the files a build wrote: later edits show as a difference."""
    return {
        name: file_fingerprint(Path(out_dir) / name, with_hash=False)
        for name in output_files(out_dir)
    }


def foreign_files(out_dir: Path, stamp: dict | None) -> str | None:
    """Why out_dir holds files a rebuild must not replace (not written by the converter, or
    edited since), or None."""
    present = output_files(out_dir) if Path(out_dir).is_dir() else []
    if not present:
        return None
    if stamp is None:
        return f"holds {len(present)} files and no build stamp (not written by the converter)"
    extra = sorted(set(present) - set(stamp.get("outputs", [])))
    if extra:
        return f"holds files the converter did not write: {', '.join(extra)}"
    written = stamp.get("output_fingerprints", {})  # older stamps have none: edits go unseen
    edited = sorted(
        name
        for name in present
        if name in written
        and file_fingerprint(Path(out_dir) / name, with_hash=False) != written[name]
    )
    return (
        f"has files edited since the converter wrote them: {', '.join(edited)}" if edited else None
    )


def output_files(out_dir: Path) -> list[str]:
    """Names of the files a build wrote (the stamp excluded)."""
    return sorted(
        entry.name for entry in os.scandir(out_dir) if entry.is_file() and entry.name != STAMP_NAME
    )
