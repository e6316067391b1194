"""Packaging: every package directory is installed, and the yaml files are found after a
plain (non-editable) ``pip install .`` run from another directory."""

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

import recbole_hybrid
from recbole_hybrid.properties_path import properties_dir

REPO = Path(__file__).resolve().parents[1]


def test_setup_cfg_lists_every_package():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    on_disk = {
        str(p.parent.relative_to(REPO)).replace(os.sep, ".")
        for p in REPO.glob("**/__init__.py")
        if p.parts[len(REPO.parts)] in ("recbole_hybrid", "dataset_atomic")
    }
    assert on_disk <= listed, f"add to setup.cfg packages: {sorted(on_disk - listed)}"


def test_properties_found():
    root = properties_dir()
    assert (root / "protocol" / "recbole.yaml").is_file()
    assert (root / "model" / "ContentKNN.yaml").is_file()


def installed_copy():
    return not Path(recbole_hybrid.__file__).resolve().is_relative_to(REPO)


@pytest.mark.skipif(
    not installed_copy() and os.environ.get("CI") != "true",
    reason="recbole_hybrid imported from the source tree, not an installed copy",
)
def test_installed_package_finds_its_properties_from_another_directory(tmp_path):
    assert installed_copy(), "in CI the tests must run against the pip-installed package"
    code = (
        "from recbole_hybrid.config import Config; "
        "from recbole_hybrid.properties_path import properties_dir;"
        "c = Config('ContentKNN', 'ml-100k', config_dict={'state': 'ERROR'}); "
        "print(properties_dir(), c['protocol'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    where, protocol = out.stdout.split()
    assert protocol == "recbole" and not Path(where).is_relative_to(REPO)
