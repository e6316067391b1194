"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest

# Bind the package now, before a test module imports a benchmark script: those put the source
# tree first on sys.path (to run from a checkout), and CI must test the pip-installed copy.
import recbole_hybrid  # noqa: F401


def _root_at_start():
    """Resolved at collection, before any test changes the working directory."""
    from dataset_atomic import raw_data_root as find_raw_data_root

    root = find_raw_data_root()
    return root if root.is_dir() else None


RAW_DATA_ROOT_AT_START = _root_at_start()


@pytest.fixture(scope="session")
def raw_data_root() -> Path:
    """The raw public data (../shared/data or $RECBOLE_HYBRID_RAW_DATA).

    Missing -> skip, except under CI=true, where real-data tests must not vanish: fail.
    Found -> exported as $RECBOLE_HYBRID_RAW_DATA, so library code called from a test that
    chdir'ed into a tmp dir (with a non-editable install) still finds it.
    """
    from dataset_atomic import RAW_DATA_ENV, raw_data_root as find_raw_data_root

    root = RAW_DATA_ROOT_AT_START or find_raw_data_root()
    if not root.is_dir():
        message = f"../shared/data not found: {root} (or set RECBOLE_HYBRID_RAW_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    os.environ[RAW_DATA_ENV] = str(root)
    return root


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in a tmp dir (RecBole writes log/ and saved/ into the working directory), with
    argv free of pytest's flags (RecBole's Config parses --key=value) and one torch thread."""
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["pytest"])
    torch.set_num_threads(1)
