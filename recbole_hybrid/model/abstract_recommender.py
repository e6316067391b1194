"""Base class of this package's models: a RecBole GeneralRecommender that reads item
content from the HybridDataset (a model never reads files itself)."""
import numpy as np
import scipy.sparse as sp
import torch
from recbole.model.abstract_recommender import GeneralRecommender

from recbole_hybrid.data.content import ContentError
from recbole_hybrid.model.layers import csr_rows_sparse, idf_weights, normalize_bow


class ContentRecommender(GeneralRecommender):
    """``input_rows = 'user'`` makes data_preparation train on user rows (autoencoders)."""

    input_rows = None
    content_norm = None  # set by normalize_training_content

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

    # ---- tensors derived from the weights for prediction, dropped when the weights may change ----
    _cache = None

    def invalidate_cache(self):
        self._cache = None

    def train(self, mode=True):
        self.invalidate_cache()
        return super().train(mode)

    def load_state_dict(self, state_dict, strict=True, **kwargs):
        self.invalidate_cache()
        return super().load_state_dict(state_dict, strict=strict, **kwargs)

    def after_pretraining(self):
        """Hook run by PretrainingTrainer once pretraining is done."""

    @torch.no_grad()
    def encode_rows(self, module, encode, rows, batch_size=4096):
        """``encode`` (a method of ``module``, run in eval mode) over the rows of a scipy CSR
        matrix, in batches given as sparse tensors; no gradient."""
        was_training = module.training
        module.eval()
        n = rows.shape[0]
        out = [encode(csr_rows_sparse(rows, np.arange(i, min(i + batch_size, n)), self.device))
               for i in range(0, max(n, 1), batch_size)]
        module.train(was_training)
        return torch.cat(out)

    # ---- models with a content VAE (``content_vae`` over the CSR ``content_matrix``) ----
    def encode_content_rows(self, rows, batch_size=4096):
        """Posterior means mu of normalised content rows (scipy CSR)."""
        return self.encode_rows(self.content_vae, self.content_vae.mu_t, rows, batch_size)

    def content_means(self, items=None):
        """mu of the given items' content (all items by default), no gradient."""
        items = np.arange(self.content_matrix.shape[0]) if items is None else np.asarray(items)
        return self.encode_content_rows(self.content_matrix[items])

    def normalize_training_content(self, raw, mode):
        """The model's content input (``normalize_bow`` ``mode``) from the raw training
        content; what new items need from it (tfidf: the idf) is kept as a buffer."""
        self.content_norm = mode
        idf = idf_weights(raw) if mode == "tfidf" else np.zeros(0, dtype=np.float32)
        self.register_buffer("content_idf", torch.from_numpy(idf))
        return normalize_bow(raw, mode, idf if mode == "tfidf" else None)

    def normalize_content(self, content_rows):
        """New items' raw content rows (dense/sparse tensor, array or scipy) -> model input,
        normalised with the training content's statistics."""
        idf = self.content_idf.cpu().numpy() if self.content_norm == "tfidf" else None
        return normalize_bow(self.new_content_rows(content_rows), self.content_norm, idf)

    def new_content_rows(self, content):
        """New items' raw content (tensor, array or scipy; [n_new, vocab]) as float32 CSR,
        checked against the vocabulary the model was trained on."""
        if isinstance(content, torch.Tensor):
            content = (content.to_dense() if content.is_sparse else content).cpu().numpy()
        content = sp.csr_matrix(content, dtype=np.float32)
        if content.shape[1] != self.content_matrix.shape[1]:
            raise ContentError(
                f"new items' content has {content.shape[1]} columns, the model was trained on "
                f"{self.content_matrix.shape[1]} (same vocabulary and field needed)")
        return content
