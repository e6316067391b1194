"""Base class of this package's models: a RecBole GeneralRecommender that reads item
content from the HybridDataset (a model never reads files itself)."""
from recbole.model.abstract_recommender import GeneralRecommender

from recbole_hybrid.data.content import ContentError


class ContentRecommender(GeneralRecommender):
    """``input_rows = 'user'`` makes data_preparation train on user rows (autoencoders)."""

    input_rows = None

    def item_content(self, dataset, name=None):
        """``ItemContent`` named ``name`` (default: the first of ``content_fields``)."""
        if not hasattr(dataset, "item_content"):
            raise ContentError(
                f"{type(self).__name__} needs item content: build the dataset with "
                "recbole_hybrid (run_recbole_hybrid / recbole_hybrid.data.create_dataset)"
            )
        names = dataset.content_names
        name = name or (names[0] if names else None)
        if name is None:
            raise ContentError(
                f"{type(self).__name__} needs item content: set content_fields in the dataset yaml"
            )
        return dataset.item_content(name)
