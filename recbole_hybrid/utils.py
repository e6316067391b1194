"""Model and trainer lookup: this package first, RecBole's as fallback (as RecBole-GNN)."""

import difflib
import importlib
import pkgutil
from functools import lru_cache

from recbole.utils import get_model as recbole_get_model
from recbole.utils import get_trainer as recbole_get_trainer

MODEL_SUBMODULES = ["general_recommender", "context_recommender"]
# RecBole's model packages whose classes import without optional libraries (exlib needs lightgbm)
RECBOLE_MODEL_PACKAGES = [
    "general_recommender",
    "context_aware_recommender",
    "sequential_recommender",
    "knowledge_aware_recommender",
]


def model_names():
    """Names of every model of this package and of RecBole's (as spelled for ``--model``)."""
    names = set()
    for sub in MODEL_SUBMODULES:
        for info in pkgutil.iter_modules(
            importlib.import_module(f"recbole_hybrid.model.{sub}").__path__
        ):
            module = importlib.import_module(f"recbole_hybrid.model.{sub}.{info.name}")
            names |= {n for n in dir(module) if n.lower() == info.name}  # one file per model
    for package in RECBOLE_MODEL_PACKAGES:
        names |= {
            n for n in dir(importlib.import_module(f"recbole.model.{package}")) if n[:1].isupper()
        }
    return sorted(names)


def get_model(model_name):
    """Return the model class named ``model_name`` from recbole_hybrid, else from RecBole."""
    module_name = model_name.lower()
    for submodule in MODEL_SUBMODULES:
        path = f"recbole_hybrid.model.{submodule}.{module_name}"
        if importlib.util.find_spec(path) is not None and hasattr(
            importlib.import_module(path), model_name
        ):
            return getattr(importlib.import_module(path), model_name)
    try:
        return recbole_get_model(model_name)
    except (
        ValueError,
        ImportError,
        AttributeError,
    ):  # ImportError: exlib needs lightgbm; AttributeError: case
        raise ValueError(unknown_model_message(model_name)) from None


def unknown_model_message(model_name):
    names = model_names()
    same = [n for n in names if n.lower() == model_name.lower()]
    near = same or difflib.get_close_matches(model_name, names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(near)}?" if near else f"known models: {', '.join(names)}"
    return (
        f"model [{model_name}] is neither a recbole_hybrid model nor a RecBole model: {hint} "
        "(names are case-sensitive)"
    )


def get_trainer(model_type, model_name):
    """``<Model>Trainer`` from recbole_hybrid.trainer if it exists, else RecBole's choice; either
    with this package's checks (``with_checks``)."""
    trainer_module = importlib.import_module("recbole_hybrid.trainer")
    trainer = getattr(trainer_module, model_name + "Trainer", None)
    return with_checks(trainer or recbole_get_trainer(model_type, model_name))


@lru_cache(maxsize=None)
def with_checks(trainer_class):
    """A RecBole trainer that counts users with all-tied scores (evaluator/ties.py), collects
    the ranking metrics' resource in fewer passes (evaluator/collector.py), binds its
    checkpoints to their data (checkpoint.py) and times its epochs for hooks (epoch_clock.py);
    other trainers (decision trees) unchanged."""
    from recbole.trainer import Trainer

    from recbole_hybrid.checkpoint import CheckpointIdentity
    from recbole_hybrid.epoch_clock import EpochClock
    from recbole_hybrid.evaluator.collector import TopkCollection
    from recbole_hybrid.evaluator.ties import TieCheck

    if not issubclass(trainer_class, Trainer) or issubclass(trainer_class, TieCheck):
        return trainer_class
    return type(
        trainer_class.__name__,
        (TieCheck, TopkCollection, CheckpointIdentity, EpochClock, trainer_class),
        {"__doc__": trainer_class.__doc__},
    )
