"""Where the yaml property files are: installed as ``recbole_hybrid/properties`` by
``pip install .`` (setup.cfg maps the top-level ``properties/`` there), or ``properties/``
next to the package in a source checkout."""

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def properties_dir() -> Path:
    for candidate in (_PACKAGE_DIR / "properties", _PACKAGE_DIR.parent / "properties"):
        if (candidate / "model").is_dir():
            return candidate
    raise FileNotFoundError(
        f"recbole_hybrid property files not found in {_PACKAGE_DIR / 'properties'} "
        f"or {_PACKAGE_DIR.parent / 'properties'}: reinstall the package"
    )
