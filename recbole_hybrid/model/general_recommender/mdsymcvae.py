r"""MDsymCVAE: MD-CVAE with symmetric inference (Zhu & Chen, WWW 2022, section 3.3).

The UAE encoder's first layer is the transposed item matrix, W_b^inf = V^T (eq. 9): a
user's first hidden layer is the sum of the latent vectors v_j of her items, so the
content-regularised V is used both to infer u and to generate r. The tie is real: the
encoder reads the very ``nn.Parameter`` V of the decoder (one storage, one gradient).

Out-of-matrix items (section 3.7.2, eq. 13): new items get V rows mu_t(x_new) in both the
encoder and the decoder, V_surr = [V_old ; mu_t(X_new)], without retraining:
``score_users(history, new_content)`` (MDCVAE's, with V_surr as the encoder rows too) scores
them for given users (model unchanged), ``add_items`` appends them to the model for good.
Old items' scores do not change (logits, no renormalisation).
Everything else (losses, training stages, cold items of protocol ``cold``) is MDCVAE's.
"""

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn

from recbole_hybrid.model.general_recommender.mdcvae import MDCVAE


class MDsymCVAE(MDCVAE):
    symmetric = True

    @torch.no_grad()
    def add_items(self, content_rows):
        """Append J' new items (raw content rows) with V rows mu_t(x) (eq. 13); returns their
        internal ids. Meant for a trained model (build a new trainer to train further)."""
        V_s, b_s, _, x_new = self.surrogate_factors(content_rows)
        n_old, n_new = self.n_items, len(V_s) - self.n_items
        V_full = torch.cat([self.V.detach(), V_s[n_old:]])
        self.V = nn.Parameter(V_full)
        self.item_bias = nn.Parameter(torch.cat([self.item_bias.detach(), b_s[n_old:]]))
        self.z_t = torch.cat([self.z_t, V_s[n_old:]])
        self.content_matrix = sp.vstack([self.content_matrix, x_new]).tocsr()
        new_has_content = np.asarray(x_new.getnnz(axis=1) > 0)
        self.has_content = np.r_[self.has_content, new_has_content]
        self._content_items = np.r_[self._content_items, n_old + np.flatnonzero(new_has_content)]
        self.trained = np.r_[self.trained, np.zeros(n_new, dtype=bool)]
        self.n_items += n_new
        self._cache = None
        return torch.arange(n_old, n_old + n_new)
