"""Build RecBole atomic files from the raw public datasets in ../shared/data.

`ensure_atomic(name, data_path)` is what the package calls before RecBole loads
a dataset: for a name in `CONVERTERS` it (re)builds `<data_path>/<name>/` when
that is missing or stale, and returns None for any other name (RecBole's own
datasets, e.g. ml-100k, need nothing from us).

Each converter module exports `SPECS` (name -> spec with `raw_files`, `sources` and,
optionally, `raw_subdir`: the folder under the raw root, default the name) and
`CONVERTERS` (name -> `convert(raw_dir, out_dir) -> stats`); they are merged here.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from . import amazon, citeulike, lastfm
from .common import (
    foreign_files,
    make_stamp,
    missing_files,
    output_files,
    output_fingerprints,
    read_stamp,
    stale_reason,
    write_stamp,
)

CONVERTER_VERSION = 1
RAW_DATA_ENV = "RECBOLE_HYBRID_RAW_DATA"
_MODULES = (citeulike, amazon, lastfm)
SPECS = {name: spec for module in _MODULES for name, spec in module.SPECS.items()}
CONVERTERS = {name: convert for module in _MODULES for name, convert in module.CONVERTERS.items()}
if len(SPECS) != sum(len(module.SPECS) for module in _MODULES) or set(SPECS) != set(CONVERTERS):
    raise ImportError("dataset_atomic: converter modules disagree on their dataset names")

__all__ = [
    "CONVERTERS",
    "CONVERTER_VERSION",
    "RAW_DATA_ENV",
    "SPECS",
    "ensure_atomic",
    "raw_data_root",
    "raw_dir_of",
]


def raw_data_root() -> Path:
    """$RECBOLE_HYBRID_RAW_DATA, else the first existing of <cwd>/../shared/data and
    <repo root>/../shared/data; the repo-relative path if neither exists."""
    if os.environ.get(RAW_DATA_ENV):
        return Path(os.environ[RAW_DATA_ENV]).expanduser()
    candidates = [
        Path.cwd() / ".." / "shared" / "data",
        Path(__file__).resolve().parents[1] / ".." / "shared" / "data",
    ]
    found = next((path for path in candidates if path.is_dir()), candidates[-1])
    return found.resolve()


def raw_dir_of(name: str, raw_root: Path | None = None) -> Path:
    """Where the raw files of `name` live: <raw root>/<spec.raw_subdir or name>."""
    subdir = getattr(SPECS[name], "raw_subdir", name)
    return Path(raw_root if raw_root is not None else raw_data_root()) / subdir


def missing_raw_message(name: str, raw_dir: Path, missing: list[str]) -> str:
    spec = SPECS[name]
    problem = (
        f"{raw_dir} not found" if not raw_dir.is_dir() else f"{raw_dir} lacks {', '.join(missing)}"
    )
    return (
        f"cannot build atomic files for {name}: {problem}.\n"
        f"Needed there: {', '.join(spec.raw_files)}.\n"
        f"Download them from {spec.sources}.\n"
        f"Put them in {raw_dir} (raw data root {raw_dir.parent}: ${RAW_DATA_ENV} if set, else the "
        f"first existing of <cwd>/../shared/data and <repo>/../shared/data), or set {RAW_DATA_ENV} "
        f"to a directory that holds {raw_dir.name}/."
    )


def check_raw_dir(name: str, raw_dir: Path) -> None:
    missing = missing_files(raw_dir, SPECS[name].raw_files)
    if missing:
        raise FileNotFoundError(missing_raw_message(name, raw_dir, missing))


@contextmanager
def build_lock(data_path: Path, name: str):
    """One builder per dataset at a time (other processes wait)."""
    with open(data_path / f".{name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def remove_leftovers(data_path: Path, name: str) -> None:
    """Temp dirs of builds that were interrupted."""
    for leftover in data_path.glob(f".{name}.building-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in data_path.glob(f".{name}.old-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def replace_dir(new_dir: Path, out_dir: Path) -> None:
    """Swap the finished build in with renames (same filesystem)."""
    if out_dir.exists():
        old_dir = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.rename(out_dir, old_dir)
        os.rename(new_dir, out_dir)
        shutil.rmtree(old_dir, ignore_errors=True)
    else:
        os.rename(new_dir, out_dir)


def build(name: str, raw_dir: Path, data_path: Path, out_dir: Path) -> dict:
    """Convert into a temp dir next to out_dir, stamp it, then rename it into place."""
    spec = SPECS[name]
    stamp = make_stamp(raw_dir, spec.raw_files, CONVERTER_VERSION, outputs=[])
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{name}.building-", dir=data_path))
    os.chmod(tmp_dir, 0o755)  # mkdtemp makes it private
    try:
        stats = CONVERTERS[name](raw_dir, tmp_dir)
        stamp.update(outputs=output_files(tmp_dir), stats=stats)
        write_stamp(tmp_dir, stamp)
        replace_dir(tmp_dir, out_dir)
        write_stamp(
            out_dir, dict(stamp, output_fingerprints=output_fingerprints(out_dir))
        )  # after the move
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return stats


def keep_foreign_files(out_dir: Path, stale: str) -> bool:
    """True when out_dir holds atomic files of the user's (no build stamp): they are used as they
    are, never overwritten. Files the converter wrote and the user edited since stop a rebuild."""
    stamp = read_stamp(out_dir)
    reason = foreign_files(out_dir, stamp)
    if reason is None:
        return False
    how = f"move them elsewhere or delete {out_dir} to rebuild it from the raw data"
    if stamp is not None:
        raise FileExistsError(f"{out_dir} must be rebuilt ({stale}) but {reason}: {how}")
    print(f"using {out_dir} as it is: it {reason}; {how}", file=sys.stderr, flush=True)
    return True


def ensure_atomic(name: str, data_path: str | Path, raw_root: Path | None = None) -> Path | None:
    """Make sure <data_path>/<name>/ holds up-to-date atomic files; return that dir.

    Returns None for datasets without a converter. Raises FileNotFoundError,
    naming the files and where to get them, when the raw files are missing.
    """
    if name not in CONVERTERS:
        return None
    data_path = Path(data_path)
    out_dir = data_path / name
    raw_dir = raw_dir_of(name, raw_root)
    check_raw_dir(name, raw_dir)
    raw_files = SPECS[name].raw_files
    stale = stale_reason(out_dir, raw_dir, raw_files, CONVERTER_VERSION)
    if stale is None:
        return out_dir  # fresh: no lock needed (data_path may be read-only)
    if keep_foreign_files(out_dir, stale):
        return out_dir
    data_path.mkdir(parents=True, exist_ok=True)
    with build_lock(data_path, name):
        reason = stale_reason(out_dir, raw_dir, raw_files, CONVERTER_VERSION)
        if reason is None:  # another process built it while we waited
            return out_dir
        remove_leftovers(data_path, name)
        print(
            f"building atomic files for {name} from {raw_dir} ({reason}) ...",
            file=sys.stderr,
            flush=True,
        )
        started = time.perf_counter()
        build(name, raw_dir, data_path, out_dir)
        seconds = time.perf_counter() - started
        print(f"built {name} in {seconds:.1f} s -> {out_dir}", file=sys.stderr, flush=True)
    return out_dir
