"""Shared pytest fixtures."""
import os
from pathlib import Path

import pytest

@pytest.fixture(scope="session")
def raw_data_root() -> Path:
    """The raw public data (../shared/data or $RECBOLE_HYBRID_RAW_DATA).

    Missing -> skip, except under CI=true, where real-data tests must not vanish: fail.
    """
    from dataset_atomic import raw_data_root as find_raw_data_root

    root = find_raw_data_root()
    if not root.is_dir():
        message = f"../shared/data not found: {root} (or set RECBOLE_HYBRID_RAW_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return root
