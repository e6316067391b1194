"""What a loaded model can do for recommend: fold in new users, score new items (from the
capabilities declared on its class, model/capabilities.py), and the error when it cannot."""

import importlib
import inspect
import pkgutil

from recbole.model.abstract_recommender import AbstractRecommender

from recbole_hybrid.model.abstract_recommender import ContentRecommender
from recbole_hybrid.model.capabilities import capabilities_of
from recbole_hybrid.utils import MODEL_SUBMODULES

FOLD_IN, COLD_START = "fold-in", "cold-start"
CAPABILITIES = {
    FOLD_IN: "scoring a user it was not trained on from her history (fold-in)",
    COLD_START: "scoring new items from their content (cold start)",
}
# RecBole autoencoders with a per-user embedding: a new user has none, fold-in would guess
PER_USER_PARAMETERS = {"CDAE"}


class CapabilityError(ValueError):
    """The model has no path for what was asked (new users, new items)."""


def _class_of(model):
    return model if isinstance(model, type) else type(model)


def implements_score_users(model):
    """The model (or class) has its own ``score_users`` (ContentRecommender's interface)."""
    method = getattr(_class_of(model), "score_users", None)
    return method is not None and method is not ContentRecommender.score_users


def folds_in_by_copy(model):
    """RecBole's fold-in models (no ``score_users``): scored through ``install_fold_in``."""
    cls = _class_of(model)
    return (
        not implements_score_users(cls)
        and capabilities_of(cls).folds_in_users
        and not issubclass(cls, ContentRecommender)
        and cls.__name__ not in PER_USER_PARAMETERS
    )


def capabilities(model):
    """{FOLD_IN, COLD_START} subset of what ``model`` (an instance or a class) can do."""
    found = set()
    new_users = capabilities_of(_class_of(model)).folds_in_users or getattr(
        model, "new_users", False
    )
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
            classes.update(
                {
                    c.__name__: c
                    for _, c in inspect.getmembers(module, inspect.isclass)
                    if issubclass(c, AbstractRecommender) and c.__module__ == module.__name__
                }
            )
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
    how = "ContentRecommender.score_users" + (
        " with cold_start = True" if capability == COLD_START else ""
    )
    raise CapabilityError(
        f"{_class_of(model).__name__} has no path for {CAPABILITIES[capability]} (a model gets one "
        f"by implementing {how}); models that have one: {', '.join(models_with(capability))}"
    )
