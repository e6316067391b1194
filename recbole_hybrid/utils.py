"""Model and trainer lookup: this package first, RecBole's as fallback (as RecBole-GNN)."""
import importlib

from recbole.utils import get_model as recbole_get_model
from recbole.utils import get_trainer as recbole_get_trainer

MODEL_SUBMODULES = ["general_recommender", "context_recommender"]


def get_model(model_name):
    """Return the model class named ``model_name`` from recbole_hybrid, else from RecBole."""
    module_name = model_name.lower()
    for submodule in MODEL_SUBMODULES:
        path = f"recbole_hybrid.model.{submodule}.{module_name}"
        if importlib.util.find_spec(path) is not None:
            return getattr(importlib.import_module(path), model_name)
    try:
        return recbole_get_model(model_name)
    except (ValueError, ImportError) as err:  # ImportError: RecBole's exlib needs lightgbm/xgboost
        raise ValueError(
            f"model [{model_name}] is neither a recbole_hybrid model nor a RecBole model ({err})"
        ) from None


def get_trainer(model_type, model_name):
    """``<Model>Trainer`` from recbole_hybrid.trainer if it exists, else RecBole's choice."""
    trainer_module = importlib.import_module("recbole_hybrid.trainer")
    trainer = getattr(trainer_module, model_name + "Trainer", None)
    return trainer or recbole_get_trainer(model_type, model_name)
