"""Trainer subclasses for models trained in stages: ``<Model>Trainer`` is found by
``recbole_hybrid.utils.get_trainer``; models without one use RecBole's Trainer."""
import os
import time

import numpy as np
import torch
from recbole.trainer import Trainer
from recbole.utils import init_seed, set_color

from recbole_hybrid.model.pretrain import cached_pretraining, content_checksum, pretrain_layerwise


class MDCVAETrainer(Trainer):
    """MD-CVAE's training (Zhu & Chen, WWW'22, section 3.4 and 4.3; authors' train_vae.py):

    1. ``pretrain``: the content VAE alone (its negative ELBO), ``pretrain_epochs`` epochs
       at ``pretrain_lr`` - run once by ``fit`` before the first epoch (not counted in the
       epoch time; logged). Deviation: end-to-end, not the layer-wise SDAE-style pretraining
       of the authors' code.
    2. every epoch: b-step (eq. 10) = RecBole's ``_train_epoch`` over user batches with an
       optimizer of the user-VAE parameters only, the content targets Mu_t = mu_t(X) fixed at
       the start of the step; then t-step (eq. 11) = ``t_epochs`` passes over item batches with
       an optimizer of the content VAE only, V fixed.
    KL weight of the user VAE: beta = min(anneal_cap, step / total_anneal_steps) per batch
    (Multi-VAE); ``total_anneal_steps: ~`` means ``anneal_epochs`` x batches per epoch.
    Learning rates are multiplied by ``lr_decay`` from epoch ``lr_decay_epoch`` on.
    RecBole's validation, early stopping and checkpoints are unchanged.
    """

    def __init__(self, config, model):
        super().__init__(config, model)
        self.optimizer = self._build_optimizer(params=model.user_vae_parameters())
        self.t_optimizer = self._build_optimizer(
            params=model.content_vae.parameters(), learning_rate=config["t_learning_rate"])
        self.t_batch_size = config["t_batch_size"]
        self.t_epochs = config["t_epochs"]
        self.pretrained = config["pretrain_epochs"] <= 0
        self.pretrain_seconds = 0.0

    # ---- stages ----
    def _content_batches(self, items):
        order = items[torch.randperm(len(items)).numpy()]
        return [order[i:i + self.t_batch_size] for i in range(0, len(order), self.t_batch_size)]

    def pretrain(self):
        start = time.perf_counter()
        model = self.model
        model.train()
        optimizer = self._build_optimizer(params=model.content_vae.parameters(),
                                          learning_rate=self.config["pretrain_lr"])
        items = model.content_items()
        for epoch in range(self.config["pretrain_epochs"]):
            total = 0.0
            for batch in self._content_batches(items):
                optimizer.zero_grad()
                loss = model.content_loss(batch, coupled=False)
                loss.backward()
                optimizer.step()
                total += loss.item()
            if epoch % 10 == 0 or epoch == self.config["pretrain_epochs"] - 1:
                self.logger.info(set_color("content VAE pretraining", "green")
                                 + f" epoch {epoch}: loss {total:.4f}")
        self.pretrained = True
        if self.config["init_v_from_content"]:
            model.init_items_from_content()
        self.pretrain_seconds = time.perf_counter() - start
        self.logger.info(f"content VAE pretraining: {self.pretrain_seconds:.1f} s")

    def b_step(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        """User VAE with the content fixed (eq. 10): RecBole's epoch loop, user-VAE optimizer."""
        self.model.refresh_content_targets()
        return super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)

    def t_step(self, epoch_idx=0):
        """Content VAE with V fixed (eq. 11)."""
        model = self.model
        model.train()
        total = 0.0
        for _ in range(self.t_epochs):
            for batch in self._content_batches(model.content_items()):
                self.t_optimizer.zero_grad()
                loss = model.content_loss(batch, coupled=True)
                self._check_nan(loss)
                loss.backward()
                self.t_optimizer.step()
                total += loss.item()
        return total

    # ---- RecBole hooks ----
    def _set_lr(self, epoch_idx):
        factor = self.config["lr_decay"] if epoch_idx >= self.config["lr_decay_epoch"] else 1.0
        for opt, lr in ((self.optimizer, self.learning_rate),
                        (self.t_optimizer, self.config["t_learning_rate"])):
            for group in opt.param_groups:
                group["lr"] = lr * factor

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        if not self.pretrained:  # fit() pretrains; this covers direct calls
            self.pretrain()
        model = self.model
        if not model.total_anneal_steps:
            model.total_anneal_steps = max(1, self.config["anneal_epochs"] * len(train_data))
        self._set_lr(epoch_idx)
        b_losses = self.b_step(train_data, epoch_idx, loss_func, show_progress)
        t_loss = self.t_step(epoch_idx)
        b_losses = b_losses if isinstance(b_losses, tuple) else (b_losses,)
        return tuple(b_losses) + (t_loss,)

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        if not self.pretrained:
            self.pretrain()
        return super().fit(train_data, valid_data, verbose=verbose, saved=saved,
                           show_progress=show_progress, callback_fn=callback_fn)


class MDsymCVAETrainer(MDCVAETrainer):
    """Same stages as MDCVAE (the tie V = W_in^T lives in the model)."""


class CVAETrainer(Trainer):
    """CVAE's schedule (Li & She, section 2.2 and 3.3; the authors' test_vae.py / test_cvae.py):

    1. ``pretrain`` (once, by ``fit``): the content VAE alone - tied denoising autoencoder
       layers and the latent layer (``pretrain_layer_epochs``, ``pretrain_latent_epochs``,
       masking noise ``pretrain_noise``; recbole_hybrid/model/pretrain.py), then the whole VAE
       (``pretrain_epochs``), all at ``pretrain_learning_rate``; theta = mu(x), V = theta.
    2. every epoch: one pass of VAE updates toward V (``learning_rate``), theta = mu(x), then
       one ALS sweep (U, then V) - the authors' order.
    RecBole's validation, early stopping and checkpoints apply to the epochs of step 2.
    """

    def __init__(self, config, model):
        super().__init__(config, model)
        self.pretrained = False
        self.pretrain_seconds = 0.0

    PRETRAIN_KEYS = ("vae_hidden_sizes", "vae_tied", "embedding_size", "content_norm", "vae_batch_size",
                     "pretrain_layer_epochs", "pretrain_latent_epochs", "pretrain_noise", "pretrain_epochs",
                     "pretrain_learning_rate", "lambda_r", "lambda_w", "seed")

    def _pretrain_vae(self):
        config, model = self.config, self.model
        lr = config["pretrain_learning_rate"]
        if config["pretrain_layer_epochs"] > 0:
            items = model.content_items
            pretrain_layerwise(model.vae, lambda idx: model.content_rows(items[idx]), len(items),
                               config["pretrain_layer_epochs"], config["pretrain_latent_epochs"], lr,
                               model.batch_size, config["pretrain_noise"], config["seed"])
        optimizer = self._build_optimizer(params=model.vae.parameters(), learning_rate=lr)
        for epoch in range(config["pretrain_epochs"]):
            loss = model.vae_epoch(optimizer, coupled=False)
            if epoch % 10 == 0:
                self.logger.info(set_color("CVAE content pretraining", "green") + f" epoch {epoch}: loss {loss:.2f}")

    def pretrain(self):
        start = time.perf_counter()
        config, model = self.config, self.model
        if config["pretrain_cache"]:
            key = {k: config[k] for k in self.PRETRAIN_KEYS}
            key.update(model="CVAE", dataset=config["dataset"], content=content_checksum(model.content))
            path, hit = cached_pretraining(model.vae, os.path.join(config["checkpoint_dir"], "pretrain"),
                                           key, self._pretrain_vae)
            self.logger.info(f"CVAE content pretraining {'loaded from' if hit else 'cached in'} {path}")
        else:
            self._pretrain_vae()
        init_seed(config["seed"], config["reproducibility"])  # same RNG state, cached or not
        model.refresh_theta()
        model.V.copy_(model.theta)
        self.pretrained = True
        self.pretrain_seconds = time.perf_counter() - start
        self.logger.info(f"CVAE content pretraining: {self.pretrain_seconds:.1f} s")

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        if not self.pretrained:
            self.pretrain()
        return super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        self.model.train()
        loss = self.model.vae_epoch(self.optimizer, coupled=True)
        self.model.refresh_theta()
        self.model.als_sweep()
        return loss
