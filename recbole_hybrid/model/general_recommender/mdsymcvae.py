r"""MDsymCVAE: MD-CVAE with symmetric inference (Zhu & Chen, WWW 2022, section 3.3).

The UAE encoder's first layer is the transposed item matrix, W_b^inf = V^T (eq. 9): a
user's first hidden layer is the sum of the latent vectors v_j of her items, so the
content-regularised V is used both to infer u and to generate r. The tie is real: the
encoder reads the very ``nn.Parameter`` V of the decoder (one storage, one gradient).

Out-of-matrix items (section 3.7.2, eq. 13): new items get V rows mu_t(x_new) in both the
encoder and the decoder, V_surr = [V_old ; mu_t(X_new)], without retraining:
``score_new_items`` scores them for given users (model unchanged), ``add_items`` appends
them to the model for good. Old items' scores do not change (logits, no renormalisation).
Everything else (losses, training stages, cold items of protocol ``cold``) is MDCVAE's.
"""
import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_hybrid.model.general_recommender.mdcvae import MDCVAE


class MDsymCVAE(MDCVAE):
    symmetric = True

    @torch.no_grad()
    def surrogate_factors(self, content_rows):
        """(V_surr, b_surr) for the current items plus new items of raw content ``content_rows``."""
        V, bias, _ = self.item_factors()
        x_new = self.normalize_content(content_rows)
        v_new = self.encode_content_rows(x_new)
        b_new = self.new_item_bias(bias).expand(len(v_new))
        return torch.cat([V, v_new]), torch.cat([bias, b_new]), x_new

    @torch.no_grad()
    def score_new_items(self, rating_matrix, content_rows):
        """Scores [B, n_items + J'] of users with histories ``rating_matrix`` ([B, n_items]
        over the current items, or [B, n_items + J'] if they already touched new items)
        when J' new items of raw content ``content_rows`` ([J', vocab]) join. The model is
        not modified; columns n_items.. are the new items."""
        V_s, b_s, _ = self.surrogate_factors(content_rows)
        r = torch.as_tensor(rating_matrix, dtype=torch.float32, device=self.device)
        if r.shape[1] < len(V_s):
            r = F.pad(r, (0, len(V_s) - r.shape[1]))
        mu, _ = self.encode(r, w_in=V_s)
        return self.decode(mu, V_s, b_s)

    @torch.no_grad()
    def add_items(self, content_rows):
        """Append J' new items (raw content rows) with V rows mu_t(x) (eq. 13); returns their
        internal ids. Meant for a trained model (build a new trainer to train further)."""
        V_s, b_s, x_new = self.surrogate_factors(content_rows)
        n_old, n_new = self.n_items, len(V_s) - self.n_items
        V_full = torch.cat([self.V.detach(), V_s[n_old:]])
        self.V = nn.Parameter(V_full)
        self.item_bias = nn.Parameter(torch.cat([self.item_bias.detach(), b_s[n_old:]]))
        self.z_t = torch.cat([self.z_t, V_s[n_old:]])
        self.content_matrix = sp.vstack([self.content_matrix, x_new]).tocsr()
        self.has_content = np.r_[self.has_content, np.asarray(x_new.getnnz(axis=1) > 0)]
        self.trained = np.r_[self.trained, np.zeros(n_new, dtype=bool)]
        self.n_items += n_new
        self._cache = None
        return torch.arange(n_old, n_old + n_new)
