"""Exact resume of an interrupted training (one process). A snapshot, written at the end of a
validated epoch (RecBole's ``fit`` callback, after early stopping and the best-model file),
holds everything the remaining epochs depend on:

  * the model's weights and buffers, and every plain attribute of each of its modules (counters
    such as MultiVAE's ``update`` or MD-CVAE's ``total_anneal_steps``);
  * every optimizer the trainer holds (MD-CVAE's content optimizer, DualNet's side optimizers);
  * the trainer's progress: next epoch, early-stopping count, best score and result, the
    best-model file, the per-epoch losses, whether pretraining is done;
  * the random states: torch, numpy, python and the training loader's generator;
  * ``extra``: whatever the caller keeps beside the trainer (benchmarks: epoch timings).

A rebuilt trainer that restores it trains the remaining epochs as if it had never stopped, to
the bit (tests/test_training_snapshot.py). A snapshot records an ``identity`` (what was run,
with which code); one of another identity is not resumed. No snapshot is written after the last
epoch: what remains then is the test, and a snapshot of a one-epoch model (the closed forms:
an items x items matrix) would cost more than it saves.
"""

import ast
import hashlib
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import recbole
import torch
import yaml

from recbole_hybrid.compat import legacy_torch_load
from recbole_hybrid.properties_path import properties_dir

PLAIN = (bool, int, float, str, type(None))
TRAINER_PROGRESS = (
    "cur_step",
    "best_valid_score",
    "best_valid_result",
    "train_loss_dict",
    "saved_model_file",
    "pretrained",
    "pretrain_seconds",
)


def code_digest(extra_files=()):
    """sha256 of the code a run's numbers depend on: this package, its property files,
    ``extra_files`` (the script that runs it), and RecBole's and torch's versions, each file as
    ``code_text`` reads it (comments and docstrings left out). A snapshot resumes only under
    the same."""
    digest = hashlib.sha256(f"{recbole.__version__} {torch.__version__}".encode())
    folders = (Path(__file__).resolve().parent, properties_dir())
    files = [(Path(f), Path(f).parent) for f in extra_files] + sorted(
        (path, folder.parent)
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    for path, root in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + code_text(path))
    return digest.hexdigest()


def code_text(path):
    """What a file of code or settings does, as bytes: Python as its syntax tree without
    docstrings, yaml as its data, ``.hyper`` search spaces as the space they define, anything
    else as it is. Editing a comment or a docstring leaves it unchanged."""
    path = Path(path)
    text = path.read_bytes()
    if path.suffix == ".py":
        return ast.dump(without_docstrings(ast.parse(text))).encode()
    if path.suffix in (".yaml", ".yml"):
        return json.dumps(yaml.safe_load(text), sort_keys=True, default=str).encode()
    if path.suffix == ".hyper":
        from recbole_hybrid.hyper import read_space  # hyper.py imports this module

        return json.dumps(read_space(path), sort_keys=True, default=str).encode()
    return text


def without_docstrings(tree):
    """``tree`` with the docstring of its module, classes and functions removed."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def module_attributes(model):
    """{module name: {attribute: value}} of the plain public attributes of every module."""
    return {
        name: {k: v for k, v in vars(module).items() if isinstance(v, PLAIN) and k[0] != "_"}
        for name, module in model.named_modules()
    }


def trainer_optimizers(trainer):
    """{name: optimizer} of every optimizer the trainer holds, directly or in a dict."""
    found = {}
    for name, value in vars(trainer).items():
        values = value.items() if isinstance(value, dict) else [("", value)]
        for key, item in values:
            if isinstance(item, torch.optim.Optimizer):
                found[f"{name}.{key}" if key else name] = item
    return found


def random_states(train_data):
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "loader": train_data.generator.get_state(),
    }


def set_random_states(train_data, states):
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    train_data.generator.set_state(states["loader"])


def finished(trainer, epoch_idx):
    """Whether ``fit`` ends after this epoch (its last one, or RecBole's early stop)."""
    return epoch_idx + 1 >= trainer.epochs or trainer.cur_step > trainer.stopping_step


class TrainingSnapshot:
    """The snapshot at ``path`` of ``trainer`` training on ``train_data``. ``saver(extra)`` is
    ``fit``'s ``callback_fn``: it writes a snapshot when ``interval`` seconds have passed since the
    last one (0: every validated epoch); ``restore()`` loads one of the same ``identity``."""

    def __init__(self, trainer, train_data, path, identity, interval=0.0):
        self.trainer, self.train_data = trainer, train_data
        self.path, self.identity, self.interval = str(path), identity, interval
        self.last = time.monotonic()

    def state(self, epoch_idx, extra):
        trainer, model = self.trainer, self.trainer.model
        buffers = {name: b for name, b in model.named_buffers()}  # non-persistent ones too
        return {
            "identity": self.identity,
            "epoch": epoch_idx,
            "weights": model.state_dict(),
            "buffers": buffers,
            "attributes": module_attributes(model),
            "optimizers": {k: o.state_dict() for k, o in trainer_optimizers(trainer).items()},
            "progress": {k: getattr(trainer, k) for k in TRAINER_PROGRESS if hasattr(trainer, k)},
            "random": random_states(self.train_data),
            "extra": extra,
        }

    def save(self, epoch_idx, extra=None):
        partial = self.path + ".partial"
        torch.save(self.state(epoch_idx, extra or {}), partial)
        os.replace(partial, self.path)  # a kill while writing leaves the previous snapshot
        self.last = time.monotonic()

    def saver(self, extra=dict):
        """``fit``'s callback: a snapshot with ``extra()`` when one is due."""

        def callback(epoch_idx, valid_score):
            due = time.monotonic() - self.last >= self.interval
            if due and not finished(self.trainer, epoch_idx):
                self.save(epoch_idx, extra())

        return callback

    def stored(self):
        """The snapshot at ``path`` if it exists and has this identity, else None."""
        if not os.path.exists(self.path):
            return None
        state = legacy_torch_load(self.path, map_location="cpu")
        return state if state["identity"] == self.identity else None

    def restore(self, state):
        """Load ``state`` (``stored()``) into the trainer, its model and the random states; the
        next ``fit`` starts at the epoch after the snapshot's. Returns its ``extra``."""
        trainer, model = self.trainer, self.trainer.model
        model.load_state_dict(state["weights"])
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(state["buffers"][name])
        modules = dict(model.named_modules())
        for name, values in state["attributes"].items():
            for key, value in values.items():
                setattr(modules[name], key, value)
        optimizers = trainer_optimizers(trainer)
        if set(optimizers) != set(state["optimizers"]):
            raise ValueError(
                f"snapshot {self.path}: optimizers {sorted(state['optimizers'])}, "
                f"the trainer has {sorted(optimizers)}"
            )
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for key, value in state["progress"].items():
            setattr(trainer, key, value)
        trainer.start_epoch = state["epoch"] + 1
        set_random_states(self.train_data, state["random"])
        return state["extra"]
