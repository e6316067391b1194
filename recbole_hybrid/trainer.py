"""Trainer subclasses for models trained in stages: ``<Model>Trainer`` is found by
``recbole_hybrid.utils.get_trainer``; models without one use RecBole's Trainer.

Under torch.distributed (recbole_hybrid/distributed.py) every rank holds the whole model and
the stages stay replicas of one computation:
  * stochastic-gradient stages outside RecBole's ``_train_epoch`` (content VAE epochs: the
    t-step, CVAE's VAE pass; DualNet's dual blocks) split each batch among the ranks and
    average the gradients weighted by rows (``shard_step``): the gradient of the whole batch,
    at 1/world_size of the work per rank. Batch orders are drawn by rank 0.
  * RecBole's ``_train_epoch`` (MD-CVAE's b-step, MultiVAE...) shards users by its
    DistributedSampler and reduces gradients with DDP, as RecBole does.
  * one-off or closed-form stages (content VAE / item-network pretraining with its cache,
    ``after_pretraining``, CVAE's ALS sweep) run on rank 0 and are broadcast
    (``Ranks.on_rank_zero``): see each trainer for why.
One process: the same code, with no communication and the same random draws as before."""

import os
import time

import torch
from recbole.trainer import Trainer
from recbole.utils import init_seed, set_color

from recbole_hybrid.distributed import Ranks, module_tensors
from recbole_hybrid.optimizers import fused, model_parameters
from recbole_hybrid.model.pretrain import (
    HiddenLayers,
    cached_pretraining,
    content_checksum,
    draw_dae_stack_as_trained,
    pretrain_dae_stack,
    pretrain_latent_layer,
)
from recbole_hybrid.progress import ProgressLog

PRETRAIN_SETTINGS = (
    "pretrain_layer_epochs",
    "pretrain_latent_epochs",
    "pretrain_noise",
    "pretrain_epochs",
    "pretrain_learning_rate",
    "pretrain_batch_size",
    "pretrain_kl_anneal_epochs",
    "seed",
)
# what step 1 of the content VAE's layer-wise pretraining depends on besides content and layers
HIDDEN_LAYER_SETTINGS = (
    "pretrain_layer_epochs",
    "pretrain_noise",
    "pretrain_learning_rate",
    "pretrain_batch_size",
    "seed",
)


class PretrainingTrainer(Trainer):
    """RecBole's Trainer plus a pretraining stage (``_pretrain``), run once by ``fit`` before
    the first epoch and timed apart. The RNG is reseeded afterwards (seed + rank, as RecBole
    seeds each rank): cached or not, the main stage starts from the same state. RecBole's
    validation, early stopping and checkpoints apply to the main stage unchanged.

    Distributed: the cached part of pretraining and ``after_pretraining`` run on rank 0 and
    are broadcast - a one-off stage, cached on disk afterwards, whose cache only rank 0 may
    write, and whose per-layer loops (model/pretrain.py) have no sharding; the other ranks
    wait (``ddp_timeout``)."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.pretrained = False
        self.pretrain_seconds = 0.0
        self.ranks = Ranks(config["device"])
        self.progress = ProgressLog(config["progress_interval"], self.logger.info)

    def _build_optimizer(self, **kwargs):
        """RecBole's optimizer; Adam as torch's fused kernel (recbole_hybrid/optimizers.py)."""
        return fused(super()._build_optimizer(**kwargs))

    def _pretrain(self, train_data):
        raise NotImplementedError

    def pretrain(self, train_data=None):
        start = time.perf_counter()
        self._pretrain(train_data)
        init_seed(self.config["seed"] + self.ranks.rank, self.config["reproducibility"])
        self.ranks.on_rank_zero(self.model.after_pretraining, module_tensors(self.model))
        self.pretrained = True
        self.pretrain_seconds = time.perf_counter() - start
        self.logger.info(f"pretraining: {self.pretrain_seconds:.1f} s")

    def cached(self, module, key, run, what, on_hit=None):
        """``run()`` trains ``module`` in place; with ``pretrain_cache`` its weights are kept
        in ``<checkpoint_dir>/pretrain/`` under ``key`` (+ model, dataset, settings, seed).
        ``on_hit()``, when they are loaded instead: draws what ``run()`` draws from the global
        RNG, so that what follows is the same either way. Distributed: rank 0 does it, every
        rank gets its weights."""
        key = dict(
            key,
            **{k: self.config[k] for k in PRETRAIN_SETTINGS},
            model=type(self.model).__name__,
            dataset=self.config["dataset"],
        )

        def here():
            if self.cached_here(module, key, run, what) and on_hit:
                on_hit()

        self.ranks.on_rank_zero(here, module_tensors(module))

    def cached_here(self, module, key, run, what, prefix="pretrain"):
        """``cached`` in this process only, under ``key`` as given; True when loaded."""
        if not self.config["pretrain_cache"]:
            run()
            return False
        path, hit = cached_pretraining(
            module, os.path.join(self.config["checkpoint_dir"], "pretrain"), key, run, prefix
        )
        self.logger.info(
            f"{what} pretraining reused from the cache {path} "
            "(same content, architecture and settings)"
            if hit
            else f"{what} pretraining saved in {path}: the next run with the same content, "
            "architecture and settings reuses it"
        )
        return hit

    def shard_step(self, optimizer, rows, loss_fn):
        """One step of ``optimizer`` on a batch of which this rank holds ``rows`` (its shard,
        possibly empty; one process: the batch): ``loss_fn(rows)`` is a mean over rows, the
        gradients are averaged over the ranks weighted by rows. Returns this rank's share of
        the batch loss (summed over the ranks: the batch's loss)."""
        optimizer.zero_grad()
        loss = loss_fn(rows) if len(rows) else None
        if loss is not None:
            self._check_nan(loss)
            loss.backward()
        total = self.ranks.average_gradients(model_parameters(optimizer), len(rows))
        optimizer.step()
        return 0.0 if loss is None else loss.item() * (len(rows) / total)

    def fit(
        self,
        train_data,
        valid_data=None,
        verbose=True,
        saved=True,
        show_progress=False,
        callback_fn=None,
    ):
        if not self.pretrained:
            self.pretrain(train_data)
        return super().fit(
            train_data,
            valid_data,
            verbose=verbose,
            saved=saved,
            show_progress=show_progress,
            callback_fn=callback_fn,
        )


class ContentVAETrainer(PretrainingTrainer):
    """PretrainingTrainer with the content VAE's stages, shared by CVAE and MD-CVAE.

    ``pretrain``: the content VAE alone, as both papers and their code do - each tied hidden
    layer as a denoising autoencoder (``pretrain_layer_epochs``, masking noise
    ``pretrain_noise``), the Gaussian latent layer (``pretrain_latent_epochs``;
    recbole_hybrid/model/pretrain.py), then the whole VAE on its negative ELBO
    (``pretrain_epochs``), at ``pretrain_learning_rate`` with batches of
    ``pretrain_batch_size`` items; ``pretrain_kl_anneal_epochs`` > 0 ramps the KL weight of
    that last phase from 0 to 1 over as many epochs (KL warm-up, not in the papers). With
    ``pretrain_cache`` the weights are keyed by the content, the architecture and these
    settings (no interactions are involved, so every split of a dataset shares them: the items
    are taken in external-token order, whatever RecBole's remapping of the split).

    The model provides ``content_vae``, ``content_matrix`` (scipy CSR), ``content_items()``,
    ``content_loss(items, coupled)``, ``pretrain_key()`` and ``after_pretraining()``.
    """

    def content_epoch(self, optimizer, batch_size, coupled=True, kl_weight=1.0):
        """One pass over the items with content in random order; returns the summed loss.
        Distributed: each batch split among the ranks (``shard_step``)."""
        model = self.model
        model.train()
        items = model.content_items()
        order = items[self.ranks.permutation(len(items))]
        loss_fn = lambda rows: model.content_loss(rows, coupled=coupled, kl_weight=kl_weight)
        total = sum(
            self.shard_step(optimizer, self.ranks.shard(order[start : start + batch_size]), loss_fn)
            for start in range(0, len(order), batch_size)
        )
        return self.ranks.sum(total)

    def _pretrain_content_vae(self, content):
        config, model = self.config, self.model
        lr, batch_size = config["pretrain_learning_rate"], config["pretrain_batch_size"]
        if config["pretrain_layer_epochs"] > 0:
            codes = self._pretrain_hidden_layers(content)
            pretrain_latent_layer(
                model.content_vae,
                codes,
                config["pretrain_latent_epochs"],
                lr,
                batch_size,
                config["seed"],
                self.progress,
            )
        optimizer = self._build_optimizer(params=model.content_vae.parameters(), learning_rate=lr)
        anneal, epochs = config["pretrain_kl_anneal_epochs"] or 0, config["pretrain_epochs"]
        self.progress("content VAE pretraining", 0, epochs)
        for epoch in range(epochs):
            kl_weight = min(1.0, (epoch + 1) / anneal) if anneal > 0 else 1.0
            loss = self.content_epoch(optimizer, batch_size, coupled=False, kl_weight=kl_weight)
            self.progress("content VAE pretraining", epoch + 1, epochs, loss)

    def _pretrain_hidden_layers(self, content):
        """Step 1 of the layer-wise pretraining (model/pretrain.py), cached on its own: the
        latent size and the later stages do not change it, nor does MDsym-CVAE against
        MD-CVAE, so a search over latent sizes trains the hidden layers once. Loaded or
        trained, the stages after it get the same result and random stream. Returns the codes
        of the last hidden layer."""
        config, model = self.config, self.model
        items = model.content_items()
        hidden = HiddenLayers(model.content_vae, len(items))
        key = {
            "stage": "hidden layers",
            "layers": [[lin.in_features, lin.out_features] for lin in hidden.linears],
            "activation": repr(hidden.act),
            "content": content,
            "content_rows": type(model).content_rows.__qualname__,
            **{k: config[k] for k in HIDDEN_LAYER_SETTINGS},
        }
        run = lambda: hidden.pretrain(
            lambda idx: model.content_rows(items[idx]),
            config["pretrain_layer_epochs"],
            config["pretrain_learning_rate"],
            config["pretrain_batch_size"],
            config["pretrain_noise"],
            config["seed"],
            self.progress,
        )
        if self.cached_here(hidden, key, run, "content VAE hidden layers", prefix="hidden"):
            hidden.draw_as_trained()
        return hidden.codes

    def _pretrain(self, train_data=None):
        model = self.model
        content = content_checksum(model.content_matrix[model.content_items()])
        self.cached(
            model.content_vae,
            dict(model.pretrain_key(), content=content),
            lambda: self._pretrain_content_vae(content),
            "content VAE",
        )


class MDCVAETrainer(ContentVAETrainer):
    """MD-CVAE's training (Zhu & Chen, WWW'22, sections 3.4 and 4.3; the authors' code):

    1. ``pretrain``: the content VAE alone, layer-wise then end to end (ContentVAETrainer).
    2. every epoch: b-step (eq. 10) = RecBole's ``_train_epoch`` over user batches with an
       optimizer of the user-VAE parameters only, the content targets Mu_t = mu_t(X) fixed at
       the start of the step; then t-step (eq. 11) = ``content_epochs`` passes over item batches of
       ``content_batch_size`` with an optimizer of the content VAE only, V fixed.
    KL weight of the user VAE: beta = min(anneal_cap, step / total_anneal_steps) per batch
    (Multi-VAE); ``total_anneal_steps: ~`` means ``anneal_epochs`` x batches per epoch.
    Learning rates are multiplied by ``lr_decay`` from epoch ``lr_decay_epoch`` on.
    RecBole's validation, early stopping and checkpoints are unchanged.
    """

    def __init__(self, config, model):
        super().__init__(config, model)
        self.optimizer = self._build_optimizer(params=model.user_vae_parameters())
        self.t_optimizer = self._build_optimizer(
            params=model.content_vae.parameters(), learning_rate=config["content_learning_rate"]
        )

    def b_step(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        """User VAE with the content fixed (eq. 10): RecBole's epoch loop, user-VAE optimizer."""
        self.model.refresh_content_targets()
        return super()._train_epoch(
            train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress
        )

    def t_step(self, epoch_idx=0):
        """Content VAE with V fixed (eq. 11)."""
        return sum(
            self.content_epoch(self.t_optimizer, self.config["content_batch_size"], coupled=True)
            for _ in range(self.config["content_epochs"])
        )

    def _set_lr(self, epoch_idx):
        factor = self.config["lr_decay"] if epoch_idx >= self.config["lr_decay_epoch"] else 1.0
        for opt, lr in (
            (self.optimizer, self.learning_rate),
            (self.t_optimizer, self.config["content_learning_rate"]),
        ):
            for group in opt.param_groups:
                group["lr"] = lr * factor

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        if not self.pretrained:  # fit() pretrains; this covers direct calls
            self.pretrain(train_data)
        model = self.model
        if not model.total_anneal_steps:
            model.total_anneal_steps = max(1, self.config["anneal_epochs"] * len(train_data))
        self._set_lr(epoch_idx)
        b_losses = self.b_step(train_data, epoch_idx, loss_func, show_progress)
        t_loss = self.t_step(epoch_idx)
        b_losses = b_losses if isinstance(b_losses, tuple) else (b_losses,)
        return tuple(b_losses) + (t_loss,)


class MDsymCVAETrainer(MDCVAETrainer):
    """Same stages as MDCVAE (the tie V = W_in^T lives in the model)."""


class CVAETrainer(ContentVAETrainer):
    """CVAE's schedule (Li & She, sections 2.2 and 3.3; the authors' test_vae.py / test_cvae.py):

    1. ``pretrain``: the content VAE alone, layer-wise then end to end (ContentVAETrainer);
       theta = mu(x), V = theta.
    2. every epoch: one pass of VAE updates toward V (``learning_rate``, batches of
       ``content_batch_size``), theta = mu(x), then one ALS sweep (U, then V) - the authors' order.
    RecBole's validation, early stopping and checkpoints apply to the epochs of step 2.

    Distributed: the VAE pass is split among the ranks (``content_epoch``); theta and the ALS
    sweep are computed by rank 0 and theta, U, V broadcast. The sweep is closed form (batched
    K x K solves, a small share of an epoch) and each half needs the whole other factor and
    the active columns of the whole matrix (model's ``confidence_weighted_solve``), so a
    row-sharded sweep would need the model's solver split and an all-gather for no gain at
    this cost; broadcasting (n_users + 2 n_items) x K floats keeps the replicas identical.
    """

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        if not self.pretrained:
            self.pretrain(train_data)
        loss = self.content_epoch(self.optimizer, self.config["content_batch_size"], coupled=True)
        model = self.model
        self.ranks.on_rank_zero(self.refresh_and_sweep, [model.theta, model.U, model.V])
        return loss

    def refresh_and_sweep(self):
        """theta = mu(x), then one ALS sweep (U, then V)."""
        self.model.refresh_theta()
        self.model.als_sweep()


class DualNetTrainer(PretrainingTrainer):
    """DualNet's training (Xiong et al., section 4):

    1. ``pretrain``: the item network as stacked denoising autoencoders on the content
       (``pretrain_layer_epochs`` per layer, masking noise ``pretrain_noise``, cached like the
       content VAE's: no interactions involved), the user network random; then layer-by-layer
       refinement: both networks truncated at level 1, ..., L-1, their top level matched, for
       ``pretrain_refine_epochs`` dual epochs each.
    2. every epoch (``dual_epoch``): the blocks (user batch of ``train_batch_size`` x item
       batch of ``item_batch_size``) of the training matrix, each once, in random order.
       ``dual_update: joint`` steps both networks on every block (the gradients of one loss,
       back-propagated along each network); ``alternate`` takes an item-network step, then a
       user-network step on every block, each with its own optimizer and the other side fixed.
    ``learner: sgd`` uses ``momentum`` (the paper: SGD with momentum).

    Distributed: each rank's loader yields its share of every user batch (RecBole's
    DistributedSampler); item batches and block order are drawn by rank 0, so a block is the
    same (user batch x item batch) on every rank, split by users, and its gradients are
    averaged weighted by users (``shard_step``): the whole block's step. The stacked denoising
    autoencoders run on rank 0 (PretrainingTrainer), the refinement epochs on every rank.
    """

    def __init__(self, config, model):
        super().__init__(config, model)
        if config["dual_update"] not in ("alternate", "joint"):
            raise ValueError(f"dual_update [{config['dual_update']}]: alternate or joint")
        self._build_dual_optimizers()

    def _build_optimizer(self, **kwargs):
        optimizer = super()._build_optimizer(**kwargs)
        if isinstance(optimizer, torch.optim.SGD):
            for group in optimizer.param_groups:
                group["momentum"] = self.config["momentum"] or 0.0
        return optimizer

    def _build_dual_optimizers(self):
        model = self.model
        self.optimizer = self._build_optimizer(params=model.parameters())
        self.side_optimizers = {
            "both": self.optimizer,
            "user": self._build_optimizer(params=model.user_net.parameters()),
            "item": self._build_optimizer(params=model.item_net.parameters()),
        }

    def dual_step(self, block, side="both", depth=None):
        """One optimizer step on a (users, items) block: ``side`` 'user' / 'item' / 'both'.
        Distributed: ``users`` is this rank's share of the block's users."""
        users, items = block
        loss_fn = lambda rows: self.model.block_loss(rows, items, update=side, depth=depth)
        return self.shard_step(self.side_optimizers[side], users, loss_fn)

    def dual_epoch(self, train_data, depth=None, epoch_idx=0):
        """One pass over every (user batch, item batch) block; returns the summed loss."""
        model, config, ranks = self.model, self.config, self.ranks
        model.train()
        ranks.set_epoch(train_data, epoch_idx)
        user_batches = [inter[model.USER_ID].cpu().numpy() for inter in train_data]
        items = model.trained_items()
        items = items[ranks.permutation(len(items))]
        size = config["item_batch_size"]
        item_batches = [items[i : i + size] for i in range(0, len(items), size)]
        blocks = [(u, i) for u in user_batches for i in item_batches]
        sides = ("item", "user") if config["dual_update"] == "alternate" else ("both",)
        total = 0.0
        for b in ranks.permutation(len(blocks)).tolist():
            for side in sides:
                loss = self.dual_step(blocks[b], side, depth)
            total += loss
        return ranks.sum(total)

    def _pretrain(self, train_data):
        config, model = self.config, self.model
        if config["pretrain_layer_epochs"] > 0:
            items = model.content_items()
            run = lambda: pretrain_dae_stack(
                model.item_net.linears,
                lambda idx: model.content_rows(items[idx]),
                len(items),
                model.item_net.act,
                config["pretrain_layer_epochs"],
                config["pretrain_learning_rate"],
                config["pretrain_batch_size"],
                config["pretrain_noise"],
                config["seed"],
                recon=("bce", "mse"),
                report=self.progress,
            )
            key = {
                "architecture": repr(model.item_net.linears),
                "content_norm": model.content_norm,
                "content": content_checksum(model.content_matrix[items]),
            }
            on_hit = lambda: draw_dae_stack_as_trained(model.item_net.linears)
            self.cached(model.item_net.linears, key, run, "item network", on_hit)
        for depth in range(1, model.item_net.depth):
            self._build_dual_optimizers()
            for epoch in range(config["pretrain_refine_epochs"] if train_data is not None else 0):
                loss = self.dual_epoch(train_data, depth, epoch)
                self.logger.info(
                    set_color("layer-wise refinement", "green")
                    + f" level {depth} epoch {epoch}: {loss:.2f}"
                )
        self._build_dual_optimizers()

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        if not self.pretrained:
            self.pretrain(train_data)
        return self.dual_epoch(train_data, epoch_idx=epoch_idx)


class LRMMTrainer(Trainer):
    """LRMM (Wang et al., EMNLP 2018): RecBole's Trainer, except that validation always scores
    with every modality (+F) whatever ``missing`` masks on the test set, so the epoch kept does
    not depend on the test condition; and each epoch logs the training MSE, the reconstruction
    loss, the learned loss weights alpha, beta (eq. 22) and the share of modalities m-drop
    dropped."""

    def _valid_epoch(self, valid_data, show_progress=False):
        with self.model.missing_modalities(None):
            return super()._valid_epoch(valid_data, show_progress=show_progress)

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        self.model.reset_loss_stats()
        loss = super()._train_epoch(
            train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress
        )
        stats = self.model.loss_stats
        n = max(stats["batches"], 1)
        alpha, beta = self.model.loss_weights().tolist()
        self.logger.info(
            set_color("LRMM", "green") + f" epoch {epoch_idx}: train mse {stats['mse'] / n:.4f}, "
            f"reconstruction {stats['recon'] / n:.4f}, alpha {alpha:.3f}, beta {beta:.3f}, "
            f"m-drop dropped {stats['dropped'] / n:.3f} of the available modalities"
        )
        return loss
