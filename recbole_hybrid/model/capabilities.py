"""What a model can do, declared once: on this package's model classes (``capabilities``), and
for RecBole's models in one table here (plus what their class tells). The protocols refuse a
model that cannot serve them, before anything is trained; recommend reads the same.

  ranks             scores every item for a user (full ranking, top-k, sampled ranking)
  rates             predicts a rating on the data's scale (protocols rating, loo-rating)
  folds_in_users    scores users it was not trained on from their history (protocol strong)
  scores_new_items  scores items it was not trained on from their content (protocol cold)
"""

from dataclasses import dataclass

from recbole.model.abstract_recommender import AutoEncoderMixin
from recbole.utils import InputType, ModelType


@dataclass(frozen=True)
class Capabilities:
    ranks: bool = True
    rates: bool = False
    folds_in_users: bool = False
    scores_new_items: bool = False


RANKING_ONLY = Capabilities()
# RecBole's models whose class does not tell (the others: see ``recbole_capabilities``)
RECBOLE_CAPABILITIES = {
    "Pop": RANKING_ONLY,  # counts, not ratings
    "EASE": Capabilities(folds_in_users=True),  # x_u B for any history
    "ItemKNN": Capabilities(folds_in_users=True),  # knn_method: item
}
# what each protocol needs of a model, and why
PROTOCOL_NEEDS = {
    "strong": ("folds_in_users", "scores users unseen in training from their history"),
    "cold": (
        "scores_new_items",
        "ranks items never seen in training, which only content-aware models can score",
    ),
    "rating": ("rates", "reports RMSE / MAE of predicted ratings"),
    "loo-rating": ("rates", "reports RMSE / MAE of predicted ratings"),
}


def recbole_capabilities(model_class):
    """RecBole's models: autoencoders over user rows fold in users; models trained pointwise on
    the label (context-aware ones, NeuMF...) predict ratings (through ``rating_rescale``)."""
    name = model_class.__name__
    if name in RECBOLE_CAPABILITIES:
        return RECBOLE_CAPABILITIES[name]
    if issubclass(model_class, AutoEncoderMixin):
        return Capabilities(folds_in_users=True)
    pointwise = getattr(model_class, "input_type", None) == InputType.POINTWISE
    model_type = getattr(model_class, "type", None)
    rates = model_type == ModelType.CONTEXT or (model_type == ModelType.GENERAL and pointwise)
    return Capabilities(rates=rates)


def capabilities_of(model_class):
    """The model's declared ``capabilities``, else RecBole's (table or class)."""
    declared = getattr(model_class, "capabilities", None)
    return declared if isinstance(declared, Capabilities) else recbole_capabilities(model_class)


def check_model_fits_protocol(model_class, protocol):
    """A clear error for a protocol the model cannot serve, before anything is trained."""
    need = PROTOCOL_NEEDS.get(protocol)
    if need and not getattr(capabilities_of(model_class), need[0]):
        raise ValueError(
            f"model {model_class.__name__} cannot serve protocol '{protocol}': the protocol "
            f"{need[1]}, and {model_class.__name__} does not ({need[0]} = False in its "
            "capabilities, recbole_hybrid/model/capabilities.py)"
        )
