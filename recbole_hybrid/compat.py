"""The one place that patches RecBole 1.2.1 for today's numpy / torch / scipy.

Imported by ``recbole_hybrid/__init__.py``; every patch is idempotent and verified by
``tests/test_compat.py``. What is patched and why:

1. numpy >= 1.24 removed ``np.float``, ``np.int``, ``np.bool``... RecBole's metrics use
   them; its Config re-adds them, but only once a Config is built. We add them at import.
2. torch >= 2.6 loads with ``weights_only=True``; RecBole's checkpoints hold its Config
   object, so ``Trainer.resume_checkpoint`` / ``evaluate(load_best_model=True)`` fail.
   RecBole's modules that call ``torch.load`` get a torch proxy whose ``load`` defaults to
   ``weights_only=False`` (checkpoints written by this very code); global torch is untouched.
3. scipy >= 1.12 dropped ``dok_matrix._update``, used by LightGCN, NGCF, SpectralCF...
4. pandas 2.x warns (FutureWarning) on RecBole's chained ``fillna(inplace=True)``; it still
   works below pandas 3 (pinned), so the warnings from RecBole's modules are silenced.
5. ``recbole.quick_start`` imports ray at import time (and ray needs pkg_resources): this
   package never imports it; ``recbole_hybrid.quick_start`` replaces what we need of it.
6. RecBole's distributed training assumes CUDA and one file system: its trainers wrap the
   model in DistributedDataParallel with ``device_ids`` (CUDA only; gloo on CPU refuses them)
   and every rank reads the best checkpoint, which only rank 0 wrote (another machine has no
   copy; a rank may read before rank 0 finished writing). The trainers get
   ``distributed.wrap_model`` and ``evaluate(load_best_model=True)`` loads rank 0's copy on
   every rank (``distributed.load_best_of_rank_zero``). One process: unchanged.
7. RecBole's EASE inverts its items x items Gram matrix with ``np.linalg.inv``; numpy 1.26's
   bundled OpenBLAS crashes (SIGSEGV) there with 2+ threads from about 24,000 items
   (citeulike-t) and is slow. EASE's module gets a numpy proxy whose ``linalg.inv`` is
   ``spd_inverse``: a Cholesky inverse in torch (MKL), valid because G = X^T X + reg * I is
   symmetric positive definite for reg > 0; otherwise numpy's inverse as before.
"""

import contextlib
import functools
import importlib
import time
import types
import warnings
from logging import getLogger

import numpy as np
import scipy.sparse as sp
import torch

from recbole_hybrid import distributed
from recbole_hybrid.progress import heartbeat

_NUMPY_ALIASES = {
    "float": np.float64,
    "int": np.int_,
    "bool": np.bool_,
    "object": np.object_,
    "str": np.str_,
    "long": np.int_,
    "complex": np.complex128,
    "unicode": np.str_,
}

# RecBole modules that call torch.load on their own checkpoints
_TORCH_LOAD_CALLERS = [
    "recbole.trainer.trainer",
    "recbole.model.general_recommender.neumf",
    "recbole.model.general_recommender.convncf",
    "recbole.model.general_recommender.nais",
    "recbole.model.general_recommender.ract",
]


def _patch_numpy_aliases():
    for name, value in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def legacy_torch_load(*args, **kwargs):
    """``torch.load`` as before torch 2.6: full unpickling of our own checkpoints."""
    kwargs.setdefault("weights_only", False)
    return torch.load(*args, **kwargs)


LOGGED_INVERSE = 5000  # matrices this large take seconds to minutes: say so (EASE, CEASE)


def spd_inverse(matrix):
    """``np.linalg.inv`` of a symmetric positive definite matrix, by Cholesky in torch.

    Same type (ndarray / np.matrix) and dtype as numpy's; a matrix that is not positive
    definite goes to ``np.linalg.inv``. The result is C-ordered: scipy's sparse @ dense copies
    any other layout of its dense operand at every product (a scoring batch of EASE). Both
    transposes below are free and exact: the Cholesky factorisation reads one triangle of the
    symmetric input, and torch's inverse of a Cholesky factor is exactly symmetric.
    """
    n, started = matrix.shape[0], time.perf_counter()
    logged = n >= LOGGED_INVERSE
    log = getLogger().info if logged else lambda message: None
    log(f"inverting the {n} x {n} Gram matrix (Cholesky, {matrix.dtype}) ...")
    stage = {"now": "its Cholesky factor"}
    describe = lambda seconds: (
        f"inverting the {n} x {n} Gram matrix: {stage['now']}, {seconds:.0f} s"
    )
    with heartbeat(describe) if logged else contextlib.nullcontext():
        array = np.asarray(matrix)
        dense = torch.from_numpy(
            array.T if array.flags.f_contiguous else np.ascontiguousarray(array)
        )
        factor, info = torch.linalg.cholesky_ex(dense)
        if int(info) != 0:
            log("not positive definite: numpy's general inverse instead")
            stage["now"] = "numpy's general inverse"
            return np.linalg.inv(matrix)
        seconds = time.perf_counter() - started
        # inverting the factor costs about twice the factorisation (LAPACK potri vs potrf)
        log(f"Cholesky factor in {seconds:.0f} s; inverting it, about {2 * seconds:.0f} s")
        stage["now"] = "inverting the factor"
        inverse = torch.cholesky_inverse(factor)
    inverse = (inverse.mT if inverse.mT.is_contiguous() else inverse.contiguous()).numpy()
    log(f"inverted the {n} x {n} Gram matrix in {time.perf_counter() - started:.0f} s")
    return np.asmatrix(inverse) if isinstance(matrix, np.matrix) else inverse


class _ModuleProxy(types.ModuleType):
    """Stands for ``module`` inside a RecBole module; only the given attributes differ."""

    def __init__(self, module, **overrides):
        super().__init__(module.__name__)
        self._module = module
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self._module, name)


_TORCH_PROXY = _ModuleProxy(torch, load=legacy_torch_load)
_NUMPY_PROXY = _ModuleProxy(np, linalg=_ModuleProxy(np.linalg, inv=spd_inverse))


def _replace_module_global(module_names, name, original, proxy):
    for module_name in module_names:
        module = importlib.import_module(module_name)
        if getattr(module, name, None) is original:
            setattr(module, name, proxy)


def _patch_torch_load():
    _replace_module_global(_TORCH_LOAD_CALLERS, "torch", torch, _TORCH_PROXY)


def _patch_ease_inverse():
    _replace_module_global(["recbole.model.general_recommender.ease"], "np", np, _NUMPY_PROXY)


def _dok_update(self, data):
    self._dict.update(data) if hasattr(self, "_dict") else dict.update(self, data)


def _patch_scipy_dok():
    if not hasattr(sp.dok_matrix, "_update"):
        sp.dok_matrix._update = _dok_update


def _trainer_init(self, config, model):
    """RecBole's AbstractTrainer.__init__ with ``distributed.wrap_model``."""
    self.config, self.model = config, model
    if not config["single_spec"]:
        self.model, self.distributed_model = distributed.wrap_model(config, model)


def _evaluate_loading_on_rank_zero(evaluate):
    """``Trainer.evaluate`` whose ``load_best_model`` under DDP loads rank 0's checkpoint."""

    @functools.wraps(evaluate)
    def wrapper(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model and eval_data and not self.config["single_spec"]:
            distributed.load_best_of_rank_zero(self, model_file or self.saved_model_file)
            load_best_model = False
        return evaluate(
            self,
            eval_data,
            load_best_model=load_best_model,
            model_file=model_file,
            show_progress=show_progress,
        )

    wrapper.recbole_evaluate = evaluate
    return wrapper


def _patch_ddp_trainers():
    from recbole.trainer.trainer import AbstractTrainer, Trainer

    AbstractTrainer.__init__ = _trainer_init
    if not hasattr(Trainer.evaluate, "recbole_evaluate"):
        Trainer.evaluate = _evaluate_loading_on_rank_zero(Trainer.evaluate)


def apply():
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")
    _patch_numpy_aliases()
    _patch_torch_load()
    _patch_scipy_dok()
    _patch_ddp_trainers()
    _patch_ease_inverse()


apply()
