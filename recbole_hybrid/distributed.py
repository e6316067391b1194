"""torch.distributed for RecBole runs: one process per rank, NCCL on CUDA and gloo on CPU.

RecBole 1.2.1 makes ranks of a run (config keys ``nproc``, ``world_size``, ``ip``, ``port``,
``offset``) with NCCL on CUDA only. Here a rank joins its process group with the backend of
its device (``backend`` overrides; ``ddp_timeout`` in minutes, default 60, bounds a collective:
ranks wait there while rank 0 pretrains alone), ranks may also be started by torchrun
(``env://``), and ``Ranks`` holds the collectives of this package's staged trainers.
"""

import os
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

DEFAULT_TIMEOUT_MINUTES = 60


def default_backend(device):
    return "nccl" if device.type == "cuda" else "gloo"


def adopt_torchrun(cfg):
    """A process started by torchrun (RANK, LOCAL_RANK, WORLD_SIZE... in its environment) is a
    rank: those values go into ``cfg`` as RecBole's keys; returns whether it was."""
    env = os.environ
    if "local_rank" in cfg or "LOCAL_RANK" not in env or int(env.get("WORLD_SIZE", "1")) <= 1:
        return False
    local_rank = int(env["LOCAL_RANK"])
    cfg.update(
        local_rank=local_rank,
        world_size=int(env["WORLD_SIZE"]),
        offset=int(env["RANK"]) - local_rank,
        nproc=int(env.get("LOCAL_WORLD_SIZE", "1")),
        init_method="env://",
    )
    return True


def join(cfg, local_rank):
    """Make this process rank ``local_rank + offset`` of ``world_size`` (RecBole's keys) on the
    device RecBole chose (``cfg['device']``: CUDA -> cuda:local_rank, else CPU; CPU ranks share
    the machine's cores unless OMP_NUM_THREADS is set). Ranks other than each machine's first
    log errors only, as RecBole's."""
    device = (
        torch.device("cuda", local_rank) if cfg["device"].type == "cuda" else torch.device("cpu")
    )
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"local rank {local_rank} has no GPU: gpu_id [{cfg['gpu_id']}] lists fewer "
                "GPUs than nproc"
            )
        torch.cuda.set_device(device)
    elif (
        "OMP_NUM_THREADS" not in os.environ
    ):  # the machine's cores shared by its ranks (as torchrun)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // (cfg.get("nproc") or 1)))
    backend = cfg.get("backend") or default_backend(device)
    init_method = (
        cfg.get("init_method") or f"tcp://{cfg.get('ip') or 'localhost'}:{cfg.get('port') or 5678}"
    )
    minutes = cfg.get("ddp_timeout") or DEFAULT_TIMEOUT_MINUTES
    dist.init_process_group(
        backend,
        init_method=init_method,
        rank=local_rank + (cfg.get("offset") or 0),
        world_size=cfg.get("world_size") or cfg.get("nproc"),
        timeout=timedelta(minutes=minutes),
    )
    cfg.update(local_rank=local_rank, device=device, single_spec=False, backend=backend)
    if local_rank != 0:
        cfg.update(state="error", show_progress=False, verbose=False)


def leave():
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(config, model):
    """(model, its DistributedDataParallel) as RecBole's AbstractTrainer makes them, on any
    device: SyncBatchNorm and ``device_ids`` on CUDA only (gloo's CPU modules take neither).
    A model without trained parameters (ItemKNN, ContentKNN...) is its own "DDP": DDP
    refuses it and there is no gradient to reduce."""
    if not any(p.requires_grad for p in model.parameters()):
        return model, model
    if config["device"].type != "cuda":
        return model, torch.nn.parallel.DistributedDataParallel(model)
    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, torch.nn.parallel.DistributedDataParallel(model, device_ids=[config["device"]])


def load_best_of_rank_zero(trainer, model_file):
    """What ``evaluate(load_best_model=True)`` loads, read by rank 0 (the rank that saved it:
    no copy on other machines, no race with its writing) and loaded by every rank."""
    state = [None]
    if dist.get_rank() == 0:
        checkpoint = torch.load(model_file, map_location="cpu", weights_only=False)
        state = [(checkpoint["state_dict"], checkpoint.get("other_parameter"))]
    dist.broadcast_object_list(state, src=0)
    state_dict, other_parameter = state[0]
    trainer.model.load_state_dict(state_dict)
    trainer.model.load_other_parameter(other_parameter)
    trainer.logger.info(f"Loading model structure and parameters from {model_file} (rank 0's)")


@contextmanager
def rank_zero_first(config):
    """Each machine's first rank runs the block before the others (it may write dataset
    caches and atomic files; the others then read them)."""
    if config["single_spec"]:
        yield
        return
    if config["local_rank"] != 0:
        dist.barrier()
    yield
    if config["local_rank"] == 0:
        dist.barrier()


def launch(target, nproc, kwargs):
    """``target(**kwargs)`` in ``nproc`` processes (torch.multiprocessing spawn), process i
    with ``config_dict['local_rank'] = i``; returns what the process of local rank 0 returned."""
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_run_rank, args=(target, kwargs, queue), nprocs=nproc, join=True)
    return None if queue.empty() else queue.get()


def _run_rank(local_rank, target, kwargs, queue):
    kwargs = dict(kwargs, config_dict=dict(kwargs.get("config_dict") or {}, local_rank=local_rank))
    result = target(**kwargs)
    if local_rank == 0:
        queue.put(result)


def module_tensors(module):
    """Parameters and buffers of ``module`` (what makes two replicas the same)."""
    return list(module.parameters()) + list(module.buffers())


class Ranks:
    """The ranks a trainer computes with, seen from this process. Without a process group
    (or within ``alone()``) it is one rank and every method is the single-process computation,
    with no communication."""

    def __init__(self, device):
        self.device = device
        self._alone = False

    @property
    def size(self):
        return 1 if self._alone or not dist.is_initialized() else dist.get_world_size()

    @property
    def rank(self):
        return 0 if self._alone or not dist.is_initialized() else dist.get_rank()

    @contextmanager
    def alone(self):
        """Within: this process computes by itself (rank 0's part of ``on_rank_zero``)."""
        self._alone, before = True, self._alone
        try:
            yield
        finally:
            self._alone = before

    def shard(self, batch):
        """This rank's rows of a batch every rank holds (strided: sizes differ by one at most)."""
        return batch[self.rank :: self.size]

    def set_epoch(self, loader, epoch):
        """Reshuffle a RecBole loader's DistributedSampler for ``epoch`` (as its Trainer does)."""
        if self.size > 1 and loader.shuffle:
            loader.sampler.set_epoch(epoch)

    def permutation(self, n):
        """``torch.randperm(n)`` drawn by rank 0, the same on every rank (numpy)."""
        order = torch.randperm(n)
        if self.size > 1:
            self.broadcast([order])
        return order.numpy()

    def broadcast(self, tensors):
        """Rank 0's values of ``tensors`` (in place) on every rank."""
        with torch.no_grad():
            for tensor in tensors:
                buffer = tensor.detach().to(self.device)  # the same storage if already there
                dist.broadcast(buffer, 0)
                if buffer.data_ptr() != tensor.data_ptr():
                    tensor.copy_(buffer)

    def on_rank_zero(self, run, tensors):
        """``run()`` by rank 0 alone (the others wait), then its ``tensors`` on every rank."""
        if self.rank == 0:
            with self.alone():
                run()
        if self.size > 1:
            self.broadcast(tensors)

    def sum(self, value):
        """Sum over the ranks of a float."""
        if self.size == 1:
            return value
        total = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.item()

    def average_gradients(self, params, rows):
        """Gradients of ``params`` averaged over the ranks, each weighted by its ``rows`` (rows
        of the batch it computed the loss on): for a loss that is a mean over rows (plus terms
        of the weights alone), the gradient of the whole batch. One all-reduce. A parameter
        with no gradient on any rank keeps ``grad = None``. Returns the batch's rows."""
        params = list(params)
        if self.size == 1 or not params:
            return rows
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        counts = torch.tensor(
            [rows] + [float(p.grad is not None) for p in params], device=self.device
        )
        flat = torch.cat([g.reshape(-1) * rows for g in grads] + [counts.to(grads[0].dtype)])
        dist.all_reduce(flat)
        total, has_grad = flat[-len(counts)].item(), flat[-len(counts) + 1 :]
        for p, g, grad, flag in zip(
            params, grads, flat[: -len(counts)].split([g.numel() for g in grads]), has_grad
        ):
            p.grad = (grad.view_as(g) / total) if flag > 0 and total > 0 else None
        return total

    def spread(self, module):
        """Largest difference of a parameter or buffer of ``module`` between two ranks
        (0.0: the replicas are identical)."""
        tensors = [t.detach().reshape(-1).double() for t in module_tensors(module)]
        if self.size == 1 or not tensors:
            return 0.0
        high = torch.cat(tensors).to(self.device)
        low = high.clone()
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        return (high - low).max().item()
