"""run_recbole_hybrid / objective_function: RecBole's quick start for this package's models
and RecBole's own, without importing ``recbole.quick_start`` (which imports ray).

``run_recbole_hybrid(..., nproc=2)`` trains under torch.distributed as RecBole's ``run``:
``nproc`` processes on this machine, ranks ``group_offset`` .. ``group_offset + nproc - 1``
of ``world_size`` meeting at ``ip:port`` (recbole_hybrid/distributed.py). A process started
by torchrun is a rank by itself (``nproc=1``)."""

import logging
import sys
from pathlib import Path
from contextlib import nullcontext
from logging import getLogger

from recbole.utils import get_environment, init_logger, init_seed, set_color

from recbole_hybrid import distributed, resume
from recbole_hybrid.checkpoint import dataset_identity
from recbole_hybrid.config import Config
from recbole_hybrid.data import create_dataset, data_preparation
from recbole_hybrid.data.protocols import fold_in_history
from recbole_hybrid.model.fold_in import install_fold_in
from recbole_hybrid.model.label_scale import restore_label_scale
from recbole_hybrid.model.capabilities import check_model_fits_protocol
from recbole_hybrid.utils import get_model, get_trainer


def prepare(config):
    """Dataset, loaders, model and trainer for ``config`` (seeded as RecBole does)."""
    check_model_fits_protocol(config.model_class, config["protocol"])
    init_seed(config["seed"], config["reproducibility"])
    with distributed.rank_zero_first(config):
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
    model = build_model(config, dataset, train_data)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.data_identity = dataset_identity(
        dataset
    )  # written into its checkpoints (checkpoint.py)
    test_data = condition_test_splits(model, test_data)
    return dataset, (train_data, valid_data, test_data), model, trainer


def build_model(config, dataset, train_data):
    """The model of ``config`` on the training split (seeded as RecBole does), predicting on the
    rating scale (``rating_rescale``) and with the protocol's fold-in history installed."""
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    restore_label_scale(model, train_data._dataset)
    history = fold_in_history(dataset)
    if history is not None:
        install_fold_in(model, history)
    return model


def condition_test_splits(model, test_data):
    """A model with ``test_splits`` (names of conditions it scores the test set under, e.g.
    LRMM's missing modalities '+F', '-U') gets the test loader once per condition: {name: the
    same loader}; ``model.test_condition(name)`` applies each (``evaluate_test``)."""
    names = list(getattr(model, "test_splits", None) or [])
    if not names:
        return test_data
    if isinstance(test_data, dict):
        raise ValueError(
            f"{type(model).__name__}: test conditions {names} need a protocol with one test "
            f"split, this one has {list(test_data)}"
        )
    return {name: test_data for name in names}


def evaluate_test(trainer, test_data, load_best_model, show_progress=False):
    """Test metrics; {split: metrics} when the protocol has several test splits (or the model
    several test conditions: each is scored within ``model.test_condition(split)``)."""
    if isinstance(test_data, dict):
        condition = getattr(trainer.model, "test_condition", None)
        results = {}
        for i, (name, loader) in enumerate(test_data.items()):
            with condition(name) if condition else nullcontext():
                results[name] = trainer.evaluate(
                    loader, load_best_model=load_best_model and i == 0, show_progress=show_progress
                )
        return results
    return trainer.evaluate(test_data, load_best_model=load_best_model, show_progress=show_progress)


def run_recbole_hybrid(
    model=None,
    dataset=None,
    config_file_list=None,
    config_dict=None,
    saved=True,
    nproc=1,
    world_size=-1,
    ip="localhost",
    port=5678,
    group_offset=0,
):
    """Train ``model`` on ``dataset`` with RecBole's Trainer and evaluate on the test split;
    with ``nproc`` > 1 or ``world_size`` > 0, in ``nproc`` processes of a distributed run
    (the result is local rank 0's)."""
    kwargs = dict(
        model=model,
        dataset=dataset,
        config_file_list=config_file_list,
        config_dict=config_dict,
        saved=saved,
    )
    if nproc == 1 and world_size <= 0:
        return run_single(**kwargs)
    ranks = dict(
        world_size=nproc if world_size <= 0 else world_size,
        ip=ip,
        port=port,
        nproc=nproc,
        offset=group_offset,
    )
    return distributed.launch(
        run_single, nproc, dict(kwargs, config_dict=dict(config_dict or {}, **ranks))
    )


def run_single(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True):
    """One process of ``run_recbole_hybrid``: the whole run, or one rank of it (``local_rank``
    in ``config_dict``, or started by torchrun)."""
    config = Config(
        model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict
    )
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
    logger.info(config)
    data, (train_data, valid_data, test_data), model, trainer = prepare(config)
    logger.info(data)
    logger.info(model)
    callback = resume.resumable(config, trainer, train_data, logger) if config["resume"] else None
    best_valid_score, best_valid_result = trainer.fit(
        train_data,
        valid_data,
        saved=saved,
        show_progress=config["show_progress"],
        callback_fn=callback,
    )
    spread = None if config["single_spec"] else replica_spread(config, trainer.model)
    test_result = evaluate_test(trainer, test_data, saved, config["show_progress"])
    if config["resume"]:
        resume.finish(config)
    logger.info(
        "The running environment of this training is as follows:\n" + get_environment(config).draw()
    )
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    result = {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "saved_model_file": trainer.saved_model_file if saved else None,
    }
    if not config["single_spec"]:
        result["replica_spread"] = spread
        distributed.leave()
    return result


def replica_spread(config, model):
    """Largest difference of a weight between two ranks after training (before the test
    loads rank 0's best checkpoint on every rank; 0: the ranks trained one model), logged
    at warning level if not 0."""
    spread = distributed.Ranks(config["device"]).spread(model)
    (getLogger().warning if spread else getLogger().info)(
        f"replica spread across ranks: {spread:g}"
    )
    return spread


def objective_function(config_dict=None, config_file_list=None, saved=True):
    """Objective for RecBole's ``HyperTuning`` (same contract as RecBole's, plus ``valid_metric``
    and ``data_files``, the atomic files' digests; the trial's epochs are logged as in a single
    run). With ``saved`` the best epoch's checkpoint
    serves the test, then is removed."""
    config = Config(config_dict=config_dict, config_file_list=config_file_list)
    init_seed(config["seed"], config["reproducibility"])
    logger = getLogger()
    for handler in logger.handlers[:]:
        logger.removeHandler(handler)
    init_logger(config)
    logging.basicConfig(level=logging.ERROR)
    _, (train_data, valid_data, test_data), _, trainer = prepare(config)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, verbose=True, saved=saved
    )
    test_result = evaluate_test(trainer, test_data, saved)
    if saved:  # a search writes one per trial (an items x items one for EASE): none is kept
        Path(trainer.saved_model_file).unlink(missing_ok=True)
    return {
        "model": config["model"],
        "best_valid_score": best_valid_score,
        "valid_metric": config["valid_metric"].lower(),
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "data_files": trainer.data_identity["files"],
    }
