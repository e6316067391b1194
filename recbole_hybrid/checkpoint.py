"""Checkpoints bound to their data: a checkpoint keeps the identity of the dataset it was
trained on (the external user and item ids in internal order, a sha256 of every atomic file
of the dataset) and a digest of its own weights. Loading it (recommend) checks both and stops
naming what changed, instead of scoring renumbered users and items with exit 0.

Every trainer ``get_trainer`` returns writes them (``CheckpointIdentity``); checkpoints made
before have none and load with a warning that nothing could be checked.
"""

import hashlib
import os
from logging import getLogger

import torch

from recbole_hybrid.compat import legacy_torch_load


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that no longer matches its data."""


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_file_digests(folder, name):
    """{file: sha256} of the atomic files ``<name>.*`` in ``folder`` ({} when it does not exist)."""
    files = (
        sorted(f for f in os.listdir(folder) if f.startswith(name + "."))
        if os.path.isdir(folder)
        else []
    )
    return {f: file_digest(os.path.join(folder, f)) for f in files}


def dataset_identity(dataset):
    """External ids in internal order and a sha256 of each atomic file of ``dataset``."""
    return {
        "users": [str(t) for t in dataset.field2id_token[dataset.uid_field]],
        "items": [str(t) for t in dataset.field2id_token[dataset.iid_field]],
        "files": atomic_file_digests(dataset.dataset_path, dataset.dataset_name),
    }


def weights_digest(checkpoint):
    """sha256 of every tensor the checkpoint holds (weights and optimizer state), in order."""
    digest = hashlib.sha256()
    optimizer = checkpoint.get("optimizer") or {}
    tensors = list(checkpoint["state_dict"].items()) + [
        (f"optimizer.{pid}.{name}", value)
        for pid, state in sorted(optimizer.get("state", {}).items())
        for name, value in sorted(state.items())
        if isinstance(value, torch.Tensor)
    ]
    for key, tensor in tensors:
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def read_checkpoint(path):
    """The checkpoint dict, or one clear error (missing, truncated, not a checkpoint, bytes
    flipped)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        checkpoint = legacy_torch_load(path, map_location="cpu")
    except Exception as err:  # torch raises many kinds for a damaged file
        raise CheckpointError(
            f"checkpoint {path} cannot be read: truncated or not a checkpoint "
            f"({type(err).__name__}: {str(err).splitlines()[0][:120]})"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"checkpoint {path} is not a RecBole checkpoint (no state_dict)")
    saved = checkpoint.get("weights_sha256")
    if saved is not None and weights_digest(checkpoint) != saved:
        raise CheckpointError(
            f"checkpoint {path} is damaged: its weights no longer match the digest written "
            "with them"
        )
    return checkpoint


def check_identity(saved, current, path):
    """Stop when the dataset rebuilt for ``path`` is not the one it was trained on."""
    if saved is None:
        getLogger().warning(
            f"{path} was saved before checkpoints kept their dataset's identity: "
            "whether its data changed since cannot be checked"
        )
        return
    changed = sorted(f for f in saved["files"] if current["files"].get(f) != saved["files"][f])
    if changed:
        detail = ", ".join(
            f"{f} ({'missing' if f not in current['files'] else 'changed'})" for f in changed
        )
        raise CheckpointError(
            f"{path} was trained on other data: {detail} since it was saved; retrain, or "
            "restore the files it was trained on"
        )
    for kind in ("users", "items"):
        before, now = saved[kind], current[kind]
        moved = sum(a != b for a, b in zip(before, now)) + abs(len(before) - len(now))
        if moved:
            raise CheckpointError(
                f"{path}: {moved} of its {len(before) - 1} {kind} got other internal ids in the "
                f"rebuilt dataset ({len(now) - 1} now): its scores would go to other {kind}"
            )


def own_checkpoint_file(path):
    """RecBole names a checkpoint ``<model>-<time to the second>.pth``, so two runs of one model
    started in the same second (a suite's steps side by side) would save, load and remove the
    same file. The process id makes it this process's own: ``<model>-<time>-<pid>.pth``."""
    stem, ext = os.path.splitext(path)
    return f"{stem}-{os.getpid()}{ext}"


class CheckpointIdentity:
    """Mixed into a RecBole trainer: its checkpoints carry ``data_identity`` (set by
    ``quick_start.prepare``) and ``weights_sha256``, in a file of this process's own
    (``own_checkpoint_file``). RecBole 1.2.1's state, plus those two."""

    data_identity = None

    def __init__(self, config, model):
        super().__init__(config, model)
        self.saved_model_file = own_checkpoint_file(self.saved_model_file)

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        state = {
            "config": self.config,
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": self.best_valid_score,
            "state_dict": self.model.state_dict(),
            "other_parameter": self.model.other_parameter(),
            "optimizer": self.optimizer.state_dict(),
            "data_identity": self.data_identity,
        }
        state["weights_sha256"] = weights_digest(state)
        torch.save(state, saved_model_file, pickle_protocol=4)
        if verbose:
            self.logger.info(f"Saving current: {saved_model_file}")
