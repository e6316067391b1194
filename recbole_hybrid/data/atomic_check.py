"""Atomic files checked line by line before RecBole reads them, so that a malformed file stops
with its path, line number and field instead of a pandas traceback (or, worse, a silent
misreading: a field that starts with a double quote is CSV quoting to RecBole's reader).

Checked: UTF-8, a header of ``name:type`` fields of RecBole's types, at least one row, as many
fields on every row as in the header, no field over the reader's 128 KiB limit, no field
starting with a double quote, numbers in float and float_seq fields.
"""

import numpy as np
from recbole.utils import FeatureType

FIELD_LIMIT = 131072  # the csv module's field size limit, under RecBole's pandas reader
TYPES = {t.value for t in FeatureType}


class AtomicFileError(ValueError):
    pass


def header_types(path, header, separator):
    """{field: type} of a header line."""
    types = {}
    for column in header.split(separator):
        name, _, kind = column.partition(":")
        if kind not in TYPES:
            raise AtomicFileError(
                f"{path}:1: header field [{column}] is not name:type with a type of {sorted(TYPES)}"
            )
        types[name] = kind
    return types


def check_value(path, number, name, kind, value, seq_separator):
    where = f"{path}:{number}: field [{name}]"
    if len(value) > FIELD_LIMIT:
        raise AtomicFileError(
            f"{where} is {len(value)} characters long, over the reader's limit of {FIELD_LIMIT}"
        )
    if value.startswith('"'):
        raise AtomicFileError(
            f"{where} starts with a double quote, which RecBole's reader takes as CSV quoting: "
            "remove it or write the text without leading quotes"
        )
    if kind in ("float", "float_seq") and value.strip():
        parts = value.split(seq_separator) if kind == "float_seq" else [value]
        try:
            np.asarray(parts, dtype=np.float64)
        except ValueError:
            bad = next(p for p in parts if not _is_number(p))
            raise AtomicFileError(f"{where} ({kind}) holds [{bad[:40]}], not a number") from None


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def check_atomic_file(path, field_separator="\t", seq_separator=" "):
    """Raise ``AtomicFileError`` naming the file, line and field of the first problem; returns
    the header's {field: type}."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    decoded = []
    for number, raw in enumerate(lines, 1):
        try:
            decoded.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise AtomicFileError(
                f"{path}:{number}: not UTF-8 (byte 0x{raw[err.start]:02x} at column "
                f"{err.start + 1}); re-encode the file as UTF-8"
            ) from None
    if not decoded:
        raise AtomicFileError(f"{path}: empty file (no header)")
    types = header_types(path, decoded[0], field_separator)
    if len(decoded) == 1:
        raise AtomicFileError(f"{path}: a header and no rows ({decoded[0]})")
    names = list(types)
    for number, line in enumerate(decoded[1:], 2):
        values = line.split(field_separator)
        if len(values) != len(names):
            raise AtomicFileError(
                f"{path}:{number}: {len(values)} fields, the header has {len(names)} ({names}); "
                "a separator inside a text field splits it (clean or escape the text)"
            )
        for name, value in zip(names, values):
            check_value(path, number, name, types[name], value, seq_separator)
    return types
