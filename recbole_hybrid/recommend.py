"""Recommendations from a checkpoint saved by the runner, without ``recbole.quick_start``
(which imports ray).

    rec = Recommender.from_checkpoint("saved/MDCVAE-Nov-24-2026_05-37-09.pth")
    rec.recommend(users=["196", "186"], k=10)                   # users of the model
    rec.recommend(history=["50", "172", "181"], k=10)           # a new user (fold-in)
    rec.recommend(users=["196"], new_items="new.item", k=10)    # + new items, from their content

``recommend`` returns a DataFrame (user, rank, item, score, new_item) in external ids. Items a
user has seen (the history the model scores her from: her training interactions, or the
fold-in part of protocol ``strong``; for a new user, the history given) are left out unless
``exclude_seen=False``. Users of the model are scored by ``full_sort_predict``, as in
evaluation. New users and new items go through the model's ``score_users`` (the one interface
of ``ContentRecommender``): a model that implements it (and sets ``cold_start`` for new items)
is served here with nothing to add; a model reading several ``.item`` fields (DEAMER, LRMM:
``new_item_fields``) gets them as {field: values}. RecBole's models that fold in users from their history
(autoencoders, EASE, ItemKNN) are served through ``install_fold_in`` on a copy of the model.

Command line (``--help`` for all options):
    python -m recbole_hybrid.recommend --checkpoint saved/X.pth --user 196 186 --k 20
    python -m recbole_hybrid.recommend --checkpoint saved/X.pth --history 50 172 --new-items new.item --output top.csv
"""
import argparse
import copy
import importlib
import inspect
import os
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from recbole.data.interaction import Interaction
from recbole.model.abstract_recommender import AbstractRecommender
from recbole.utils import FeatureType, ModelType, init_seed

from recbole_hybrid import renamed_keys
from recbole_hybrid.checkpoint import CheckpointError, check_identity, dataset_identity, read_checkpoint
from recbole_hybrid.data import create_dataset, data_preparation
from recbole_hybrid.data.content import ContentError, resolve_field_kind, validate_raw_item_frame
from recbole_hybrid.data.protocols import fold_in_history, install_fold_in
from recbole_hybrid.model.abstract_recommender import ContentRecommender, binary_rows
from recbole_hybrid.model.capabilities import capabilities_of
from recbole_hybrid.quick_start import build_model
from recbole_hybrid.utils import MODEL_SUBMODULES

FOLD_IN, COLD_START = "fold-in", "cold-start"
CAPABILITIES = {
    FOLD_IN: "scoring a user it was not trained on from her history (fold-in)",
    COLD_START: "scoring new items from their content (cold start)",
}
# RecBole autoencoders with a per-user embedding: a new user has none, fold-in would guess
PER_USER_PARAMETERS = {"CDAE"}
RANKING_MODEL_TYPES = {ModelType.GENERAL, ModelType.TRADITIONAL}
# buffers the model's constructor rebuilds from the dataset: older checkpoints may lack them
REBUILT_BUFFERS = {"content_idf"}
BATCH_USERS = 512


class UnknownIdError(ValueError):
    """External user or item ids the model's dataset does not have."""


class CapabilityError(ValueError):
    """The model has no path for what was asked (new users, new items)."""


# ---- loading ----
def scoring_history(dataset, train_data):
    """The interactions the model scores its users from: the fold-in history, else training."""
    history = fold_in_history(dataset)
    return train_data._dataset if history is None else history


def load_data_and_model(model_file, data_path=None):
    """RecBole's ``load_data_and_model`` for the runner's checkpoints, without ray: returns
    (config, model, dataset, train_data, valid_data, test_data). The dataset is rebuilt and
    split from the saved config and seed (the same id remapping and split as in training),
    the model built as ``quick_start.prepare`` does (fold-in history included), loaded and
    put in eval mode. ``data_path``: the directory that now holds ``<dataset>/``."""
    checkpoint = read_checkpoint(model_file)  # its tensors checked against their digest
    config = checkpoint["config"]
    config.final_config_dict = renamed_keys.upgrade(config.final_config_dict)  # saved under old names
    if data_path is not None:
        config["data_path"] = os.path.join(data_path, config["dataset"])
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    check_identity(checkpoint.get("data_identity"), dataset_identity(dataset), model_file)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = build_model(config, dataset, train_data)
    load_weights(model, checkpoint, model_file)
    return config, model.eval(), dataset, train_data, valid_data, test_data


def load_weights(model, checkpoint, model_file):
    """state_dict and other parameters; a checkpoint may lack only ``REBUILT_BUFFERS``."""
    missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    missing = [key for key in missing if key.rsplit(".", 1)[-1] not in REBUILT_BUFFERS]
    if missing or unexpected:
        raise RuntimeError(f"{model_file} does not fit {type(model).__name__} as built from its config: "
                           f"missing {missing}, unexpected {unexpected}")
    model.load_other_parameter(checkpoint.get("other_parameter"))


# ---- what a model can do ----
def _class_of(model):
    return model if isinstance(model, type) else type(model)


def implements_score_users(model):
    """The model (or class) has its own ``score_users`` (ContentRecommender's interface)."""
    method = getattr(_class_of(model), "score_users", None)
    return method is not None and method is not ContentRecommender.score_users


def folds_in_by_copy(model):
    """RecBole's fold-in models (no ``score_users``): scored through ``install_fold_in``."""
    cls = _class_of(model)
    return (not implements_score_users(cls) and capabilities_of(cls).folds_in_users
            and not issubclass(cls, ContentRecommender) and cls.__name__ not in PER_USER_PARAMETERS)


def capabilities(model):
    """{FOLD_IN, COLD_START} subset of what ``model`` (an instance or a class) can do."""
    found = set()
    new_users = capabilities_of(_class_of(model)).folds_in_users or getattr(model, "new_users", False)
    if (implements_score_users(model) and new_users) or folds_in_by_copy(model):
        found.add(FOLD_IN)
    if getattr(model, "cold_start", False) and implements_score_users(model):
        found.add(COLD_START)
    return found


def model_classes():
    """Every model class of this package and RecBole's general models."""
    import recbole.model.general_recommender as recbole_general

    classes = {}
    for sub in MODEL_SUBMODULES:
        package = importlib.import_module(f"recbole_hybrid.model.{sub}")
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            classes.update({c.__name__: c for _, c in inspect.getmembers(module, inspect.isclass)
                            if issubclass(c, AbstractRecommender) and c.__module__ == module.__name__})
    for name, cls in vars(recbole_general).items():
        if isinstance(cls, type) and issubclass(cls, AbstractRecommender):
            classes.setdefault(name, cls)
    return classes


def models_with(capability):
    return sorted(name for name, cls in model_classes().items() if capability in capabilities(cls))


def require(model, capability):
    """CapabilityError naming the missing capability and the models that have it."""
    if capability in capabilities(model):
        return
    how = "ContentRecommender.score_users" + (" with cold_start = True" if capability == COLD_START else "")
    raise CapabilityError(
        f"{_class_of(model).__name__} has no path for {CAPABILITIES[capability]} (a model gets one "
        f"by implementing {how}); models that have one: {', '.join(models_with(capability))}")


# ---- new items' content ----
@dataclass
class NewItems:
    ids: list  # external item ids
    content: object  # raw content rows [J, model.content_width] (CSR), or {field: J values} (new_item_fields)


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
        raise ContentError(f"{where}: field {field} ({ftype.value}) holds a value that is not a number: {err}") from None


def item_frame(source, dataset):
    """(frame of parsed values, {field: FeatureType}, name for messages) of new items given as
    a ``.item``-style file (header ``item_id:token field:type ...``) or a DataFrame (columns
    ``field:type``, or ``field`` for a field of the model's dataset)."""
    config = dataset.config
    if isinstance(source, pd.DataFrame):
        raw, where = source, "new items (DataFrame)"
    else:
        where = str(source)
        raw = pd.read_csv(source, sep=config["field_separator"], dtype=str, engine="python",
                          keep_default_na=False, encoding=config["encoding"])
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
        values = [_parse_value(v, ftype, config["seq_separator"], where, field) for v in raw[column]]
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
        raise ContentError(f"{where}: the model reads content [{name}]: columns "
                           f"{_kind_text(trained, dataset.field2type)} needed, {missing} missing")
    if any(types[f] != dataset.field2type[f] for f in needed):
        raise ContentError(f"{where}: content [{name}] is {_kind_text(trained, types)}, the model was "
                           f"trained on {_kind_text(trained, dataset.field2type)}")
    return trained


def _check_widths(rows, ids, field, width, where, empty_ok=False):
    bad = [(i, len(r)) for i, r in zip(ids, rows) if len(r) != width and not (empty_ok and len(r) == 0)]
    if bad:
        raise ContentError(f"{where}: field {field} needs vectors of length {width} (what the model was "
                           f"trained on), found (item, length) {bad[:5]}")


def _dense_rows(rows, ids, field, width, where):
    _check_widths(rows, ids, field, width, where)
    return sp.csr_matrix(np.stack(rows).astype(np.float32))


def _token_rows(tokens, weights, field, vocabulary, width, where):
    unknown = sorted({t for row in tokens for t in row if t not in vocabulary})
    if unknown:
        raise ContentError(f"{where}: field {field} has {len(unknown)} tokens the model was never trained "
                           f"on (its vocabulary: {width}), e.g. {unknown[:10]}")
    rows = np.repeat(np.arange(len(tokens)), [len(t) for t in tokens])
    cols = np.array([vocabulary[t] - 1 for row in tokens for t in row], dtype=np.int64)  # id 0 is padding
    data = np.concatenate([np.asarray(w, np.float32) for w in weights] + [np.zeros(0, np.float32)])
    return sp.csr_matrix((data, (rows, cols)), shape=(len(tokens), width))  # duplicates summed


def content_rows(frame, kind, ids, dataset, width, where):
    """Raw content rows [J, width] of the new items, aligned with the trained vocabulary."""
    kind, field, counts = kind
    if dataset.field2type[field] == FeatureType.TOKEN:
        frame = frame.assign(**{field: [[t] if t else [] for t in frame[field]]})
    empty = [i for i, v in zip(ids, frame[field]) if len(v) == 0]
    if empty:
        raise ContentError(f"{where}: items {empty[:5]} have no {field}: a new item is scored from its content")
    if kind == "dense":
        return _dense_rows(list(frame[field]), ids, field, width, where)
    weights = frame[counts] if kind == "bow" else [np.ones(len(t)) for t in frame[field]]
    return _token_rows(list(frame[field]), list(weights), field, dataset.field2token_id[field], width, where)


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
        raise ContentError(f"{where}: items {[i for i, u in zip(ids, usable) if not u][:5]} have no {names} the "
                           "model can read (no vector, no known word): a new item is scored from its content")
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
        raise ContentError(f"{where}: {type(model).__name__} reads no .item field of its items (no metadata or "
                           "dense modality): new items have no content it could score them from")
    names = [model.content_name] if fields is None else [f.name for f in fields]
    kinds = [check_content_fields(name, types, dataset, where) for name in names]
    validate_raw_item_frame(frame, iid, names, types, where)
    ids = [str(i) for i in frame[iid]]
    known = [i for i in ids if i in dataset.field2token_id[iid] or i == ""]
    if known:
        raise ContentError(f"{where}: items {known[:10]} are not new (ids of the model's dataset, or empty)")
    if fields is not None:
        return NewItems(ids, field_values(frame, fields, types, ids, where))
    return NewItems(ids, content_rows(frame, kinds[0], ids, dataset, model.content_width, where))


# ---- scoring ----
class HistoryRows:
    """Stands for a RecBole Dataset holding only new users' history rows (user r = row r):
    what ``install_fold_in`` reads."""

    def __init__(self, rows):
        self.rows = rows

    def inter_matrix(self, form="coo", value_field=None):
        return self.rows.asformat(form)

    def history_item_matrix(self, value_field=None, max_history_len=None):
        lengths = np.diff(self.rows.indptr)
        ids = np.zeros((self.rows.shape[0], max(int(lengths.max(initial=0)), 1)), dtype=np.int64)
        values = np.zeros(ids.shape, dtype=np.float32)
        for r in range(len(lengths)):
            ids[r, :lengths[r]] = self.rows.indices[self.rows.indptr[r]:self.rows.indptr[r + 1]]
            values[r, :lengths[r]] = 1.0
        return torch.from_numpy(ids), torch.from_numpy(values), torch.from_numpy(lengths)


def _fold_in_copy(model, rows):
    """A shallow copy of ``model`` with ``rows`` installed as its users' histories (the model untouched)."""
    twin = copy.copy(model)
    for registry in ("_parameters", "_buffers", "_modules"):
        twin.__dict__[registry] = dict(model.__dict__[registry])
    install_fold_in(twin, HistoryRows(rows))
    return twin


def _full_sort(model, users):
    users = torch.as_tensor(users, device=model.device)
    return model.full_sort_predict(Interaction({model.USER_ID: users})).view(len(users), -1)


def _in_batches(score, n, batch_size=BATCH_USERS):
    """torch.cat of ``score(slice)`` over slices of ``n`` users."""
    return torch.cat([score(slice(i, i + batch_size)).cpu() for i in range(0, max(n, 1), batch_size)])


@torch.no_grad()
def score_known_users(model, users, history, new):
    """Scores [B, n_items (+ J)] of the model's users (internal ids; ``history``: their rows)."""
    if new is None:
        return _in_batches(lambda s: _full_sort(model, users[s]), len(users))
    return _in_batches(lambda s: model.score_users(history[s], new.content, users=torch.as_tensor(users[s])),
                       len(users))


@torch.no_grad()
def score_new_users(model, history, new):
    """Scores [B, n_items (+ J)] of new users given their history rows (binary CSR)."""
    content = None if new is None else new.content
    if implements_score_users(model):
        return _in_batches(lambda s: model.score_users(history[s], content), history.shape[0])
    return _in_batches(lambda s: _full_sort(_fold_in_copy(model, history[s]), np.arange(history[s].shape[0])),
                       history.shape[0])


class Recommender:
    """Top-k recommendations of a loaded model, in the dataset's external ids."""

    def __init__(self, model, dataset, history):
        """``history``: the interactions the model scores its users from (``scoring_history``)."""
        if dataset.config["MODEL_TYPE"] not in RANKING_MODEL_TYPES:
            raise CapabilityError(f"{type(model).__name__}: recommend serves general models (user x item "
                                  f"full ranking), not {dataset.config['MODEL_TYPE'].name.lower()} models")
        self.model, self.dataset = model, dataset
        self.seen = binary_rows(history.inter_matrix(form="csr"))

    @classmethod
    def from_checkpoint(cls, model_file, data_path=None):
        _, model, dataset, train_data, _, _ = load_data_and_model(model_file, data_path)
        return cls(model, dataset, scoring_history(dataset, train_data))

    def internal_ids(self, field, tokens, what):
        """Internal ids of external ids ``tokens``; UnknownIdError naming the unknown ones."""
        mapping = self.dataset.field2token_id[field]
        tokens = [str(t) for t in tokens]
        unknown = [t for t in tokens if t not in mapping or mapping[t] == 0]
        if unknown:
            raise UnknownIdError(f"unknown {what} ids (not in dataset {self.dataset.dataset_name}): {unknown[:20]}"
                                 + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""))
        return np.array([mapping[t] for t in tokens], dtype=np.int64)

    def history_rows(self, histories):
        """Binary CSR [B, n_items] of new users' histories (lists of external item ids)."""
        items = [self.internal_ids(self.dataset.iid_field, h, "item") for h in histories]
        rows = np.repeat(np.arange(len(items)), [len(i) for i in items])
        cols = np.concatenate(items + [np.zeros(0, np.int64)])
        return binary_rows(sp.csr_matrix((np.ones(len(cols)), (rows, cols)),
                                         shape=(len(items), self.dataset.item_num)))

    def recommend(self, users=(), history=None, new_items=None, k=10, exclude_seen=True, candidates=None):
        """Top-``k`` items, as a DataFrame (user, rank, item, score, new_item), of

        ``users``: external ids of the model's users;
        ``history``: a new user's items (external ids), or {name: items} for several (fold-in);
        ``new_items``: a ``.item``-style file or DataFrame of items unknown to the model, ranked
            with the others from their content (models with a cold-start path);
        ``candidates``: external ids of the known items to rank (default: all); new items are
            always ranked. ``exclude_seen``: leave out the items of each user's history."""
        new = None
        if new_items is not None:
            require(self.model, COLD_START)
            new = read_new_items(new_items, self.dataset, self.model)
        labels, scores, seen = [], [], []
        if len(users):
            ids = self.internal_ids(self.dataset.uid_field, users, "user")
            labels += [str(u) for u in users]
            seen.append(self.seen[ids])
            scores.append(score_known_users(self.model, ids, seen[-1], new))
        if history is not None:
            require(self.model, FOLD_IN)
            history = history if isinstance(history, Mapping) else {"new": history}
            labels += [str(name) for name in history]
            seen.append(self.history_rows(list(history.values())))
            scores.append(score_new_users(self.model, seen[-1], new))
        if not labels:
            raise ValueError("recommend: give users (of the model) and/or a history (of a new user)")
        keep = self.candidate_mask(candidates, new)
        return self.top_k(labels, torch.cat(scores), sp.vstack(seen).tocsr() if exclude_seen else None,
                          keep, k, [] if new is None else new.ids)

    def candidate_mask(self, candidates, new):
        """Bool [n_items + J]: the items that may be recommended (never RecBole's padding item 0)."""
        keep = np.zeros(self.dataset.item_num, dtype=bool)
        if candidates is None:
            keep[1:] = True
        else:
            keep[self.internal_ids(self.dataset.iid_field, candidates, "candidate item")] = True
        return torch.from_numpy(np.r_[keep, np.ones(0 if new is None else len(new.ids), dtype=bool)])

    def top_k(self, labels, scores, seen, keep, k, new_ids):
        """The long table of each row's ``k`` best items among ``keep`` minus ``seen``."""
        scores = scores.masked_fill(~keep, -np.inf)
        if seen is not None:
            rows, cols = seen.nonzero()
            scores[torch.from_numpy(rows), torch.from_numpy(cols)] = -np.inf
        values, cols = torch.topk(scores, min(k, scores.shape[1]))
        n_items = self.dataset.item_num
        known = self.dataset.field2id_token[self.dataset.iid_field]
        records = [
            (label, rank + 1, known[c] if c < n_items else new_ids[c - n_items], v, c >= n_items)
            for label, row_v, row_c in zip(labels, values.tolist(), cols.tolist())
            for rank, (v, c) in enumerate(zip(row_v, row_c)) if v > -np.inf
        ]
        return pd.DataFrame(records, columns=["user", "rank", "item", "score", "new_item"])


# ---- command line ----
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m recbole_hybrid.recommend",
        description="Top-k recommendations from a checkpoint saved by run_recbole_hybrid.py")
    parser.add_argument("--checkpoint", required=True, help="saved/<Model>-<date>.pth")
    parser.add_argument("--user", nargs="+", default=[], help="external ids of the model's users")
    parser.add_argument("--history", nargs="+", help="external item ids of a new user's history (fold-in)")
    parser.add_argument("--new-items", help=".item-style file of new items (header item_id:token field:type ...)")
    parser.add_argument("--candidates", nargs="+", help="rank only these known items (+ the new items)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--include-seen", action="store_true", help="keep the items of each user's history")
    parser.add_argument("--output", help="write a .csv or .json file instead of printing a table")
    parser.add_argument("--data-path", help="directory holding <dataset>/ if it moved since training")
    args = parser.parse_args(argv)
    if not args.user and not args.history:
        parser.error("give --user and/or --history")
    if args.output and not args.output.endswith((".csv", ".json")):
        parser.error("--output must end in .csv or .json")
    if args.k < 1:
        parser.error(f"--k {args.k}: the number of items to recommend must be at least 1")
    return args


def write_table(table, output=None):
    if output is None:
        print(table.to_string(index=False))
    elif output.endswith(".json"):
        table.to_json(output, orient="records", indent=2)
    else:
        table.to_csv(output, index=False)


def main(argv=None):
    args = parse_args(argv)
    try:
        recommender = Recommender.from_checkpoint(args.checkpoint, args.data_path)
        table = recommender.recommend(users=args.user, history=args.history, new_items=args.new_items, k=args.k,
                                      exclude_seen=not args.include_seen, candidates=args.candidates)
    except (UnknownIdError, CapabilityError, ContentError, CheckpointError) as err:
        raise SystemExit(f"error: {err}") from None
    write_table(table, args.output)


if __name__ == "__main__":
    main()
