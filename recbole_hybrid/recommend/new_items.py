"""New items' content for recommend: a ``.item``-style file or a DataFrame, parsed as RecBole
parses atomic files and checked against what the model was trained on (data/content.py's
checks, then fields, types, vector lengths, vocabulary); errors name the file and the field."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from recbole.utils import FeatureType

from recbole_hybrid.data.content import ContentError, resolve_field_kind, validate_raw_item_frame
from recbole_hybrid.model.abstract_recommender import ContentRecommender


@dataclass
class NewItems:
    ids: list  # external item ids
    # raw content rows [J, model.content_width] (CSR), or {field: J values} (new_item_fields)
    content: object


def _parse_value(value, ftype, separator, where, field):
    """One cell as RecBole parses it: float_seq / token_seq -> array, token -> str."""
    missing = value is None or (isinstance(value, float) and np.isnan(value))
    if not ftype.value.endswith("seq"):
        return "" if missing else str(value)
    if missing:
        value = ""
    if isinstance(value, str):
        value = list(filter(None, value.split(separator)))
    try:
        return np.asarray(value, dtype=float if ftype == FeatureType.FLOAT_SEQ else str).ravel()
    except ValueError as err:
        raise ContentError(
            f"{where}: field {field} ({ftype.value}) holds a value that is not a number: {err}"
        ) from None


def item_frame(source, dataset):
    """(frame of parsed values, {field: FeatureType}, name for messages) of new items given as
    a ``.item``-style file (header ``item_id:token field:type ...``) or a DataFrame (columns
    ``field:type``, or ``field`` for a field of the model's dataset)."""
    config = dataset.config
    if isinstance(source, pd.DataFrame):
        raw, where = source, "new items (DataFrame)"
    else:
        where = str(source)
        raw = pd.read_csv(
            source,
            sep=config["field_separator"],
            dtype=str,
            engine="python",
            keep_default_na=False,
            encoding=config["encoding"],
        )
    columns, types = {}, {}
    for column in raw.columns:
        field, _, ftype = str(column).partition(":")
        try:
            ftype = FeatureType(ftype) if ftype else dataset.field2type.get(field)
        except ValueError:
            raise ContentError(f"{where}: column {column}: unknown type [{ftype}]") from None
        if ftype is None:
            continue  # a field the model's dataset does not have: not needed
        seq_len = (config["seq_len"] or {}).get(field)
        values = [
            _parse_value(v, ftype, config["seq_separator"], where, field) for v in raw[column]
        ]
        columns[field] = pd.Series([v[:seq_len] if seq_len else v for v in values], dtype=object)
        types[field] = ftype
    return pd.DataFrame(columns, index=pd.RangeIndex(len(raw))), types, where


def _kind_text(kind, types):
    return " + ".join(f"{f}:{types[f].value}" for f in kind[1:] if f)


def check_content_fields(name, types, dataset, where):
    """The new items' columns of content ``name`` exist and have the trained types."""
    trained = resolve_field_kind(name, dataset.field2type, dataset.item_file_path)
    needed = [f for f in trained[1:] if f]
    missing = [f for f in needed if f not in types]
    if missing:
        raise ContentError(
            f"{where}: the model reads content [{name}]: columns "
            f"{_kind_text(trained, dataset.field2type)} needed, {missing} missing"
        )
    if any(types[f] != dataset.field2type[f] for f in needed):
        raise ContentError(
            f"{where}: content [{name}] is {_kind_text(trained, types)}, the model was "
            f"trained on {_kind_text(trained, dataset.field2type)}"
        )
    return trained


def _check_widths(rows, ids, field, width, where, empty_ok=False):
    bad = [
        (i, len(r)) for i, r in zip(ids, rows) if len(r) != width and not (empty_ok and len(r) == 0)
    ]
    if bad:
        raise ContentError(
            f"{where}: field {field} needs vectors of length {width} (what the model was "
            f"trained on), found (item, length) {bad[:5]}"
        )


def _dense_rows(rows, ids, field, width, where):
    _check_widths(rows, ids, field, width, where)
    return sp.csr_matrix(np.stack(rows).astype(np.float32))


def _token_rows(tokens, weights, field, vocabulary, width, where):
    unknown = sorted({t for row in tokens for t in row if t not in vocabulary})
    if unknown:
        raise ContentError(
            f"{where}: field {field} has {len(unknown)} tokens the model was never trained "
            f"on (its vocabulary: {width}), e.g. {unknown[:10]}"
        )
    rows = np.repeat(np.arange(len(tokens)), [len(t) for t in tokens])
    cols = np.array(
        [vocabulary[t] - 1 for row in tokens for t in row], dtype=np.int64
    )  # id 0 is padding
    data = np.concatenate([np.asarray(w, np.float32) for w in weights] + [np.zeros(0, np.float32)])
    return sp.csr_matrix((data, (rows, cols)), shape=(len(tokens), width))  # duplicates summed


def content_rows(frame, kind, ids, dataset, width, where):
    """Raw content rows [J, width] of the new items, aligned with the trained vocabulary."""
    kind, field, counts = kind
    if dataset.field2type[field] == FeatureType.TOKEN:
        frame = frame.assign(**{field: [[t] if t else [] for t in frame[field]]})
    empty = [i for i, v in zip(ids, frame[field]) if len(v) == 0]
    if empty:
        raise ContentError(
            f"{where}: items {empty[:5]} have no {field}: a new item is scored from its content"
        )
    if kind == "dense":
        return _dense_rows(list(frame[field]), ids, field, width, where)
    weights = frame[counts] if kind == "bow" else [np.ones(len(t)) for t in frame[field]]
    return _token_rows(
        list(frame[field]), list(weights), field, dataset.field2token_id[field], width, where
    )


def field_values(frame, fields, types, ids, where):
    """{field: per new item, its vector (float_seq) or words (token_seq)} of the model's
    ``new_item_fields``; an empty cell is that modality missing (words the model does not know
    are dropped, as for its training items), but each item needs some content it reads."""
    values, usable = {}, np.zeros(len(ids), dtype=bool)
    for spec in fields:
        column = list(frame[spec.name])
        if types[spec.name] == FeatureType.TOKEN:
            column = [[v] if v else [] for v in column]
        if spec.width is not None:
            _check_widths(column, ids, spec.name, spec.width, where, empty_ok=True)
            values[spec.name] = [np.asarray(v, dtype=np.float32) for v in column]
            usable |= [len(v) > 0 for v in column]
        else:
            values[spec.name] = [[str(w) for w in v] for v in column]
            usable |= [any(str(w) in spec.words for w in v) for v in column]
    if not usable.all():
        names = " / ".join(f.name for f in fields)
        raise ContentError(
            f"{where}: items {[i for i, u in zip(ids, usable) if not u][:5]} have no {names} the "
            "model can read (no vector, no known word): a new item is scored from its content"
        )
    return values


def read_new_items(source, dataset, model):
    """NewItems from a ``.item``-style file or a DataFrame, checked against the content the
    model was trained on (fields, types, vector length, vocabulary, NaN); errors name the
    file and the field."""
    frame, types, where = item_frame(source, dataset)
    iid = dataset.iid_field
    if iid not in frame:
        raise ContentError(f"{where}: no item id column [{iid}] (header {iid}:token)")
    fields = model.new_item_fields() if isinstance(model, ContentRecommender) else None
    if fields == []:
        raise ContentError(
            f"{where}: {type(model).__name__} reads no .item field of its items (no metadata or "
            "dense modality): new items have no content it could score them from"
        )
    names = [model.content_name] if fields is None else [f.name for f in fields]
    kinds = [check_content_fields(name, types, dataset, where) for name in names]
    validate_raw_item_frame(frame, iid, names, types, where)
    ids = [str(i) for i in frame[iid]]
    known = [i for i in ids if i in dataset.field2token_id[iid] or i == ""]
    if known:
        raise ContentError(
            f"{where}: items {known[:10]} are not new (ids of the model's dataset, or empty)"
        )
    if fields is not None:
        return NewItems(ids, field_values(frame, fields, types, ids, where))
    return NewItems(ids, content_rows(frame, kinds[0], ids, dataset, model.content_width, where))
