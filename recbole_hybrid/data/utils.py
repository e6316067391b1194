"""create_dataset / data_preparation: RecBole's, with our Dataset, atomic files built on
demand, the protocol's split, and the train loader chosen from what the model declares."""

import os
from logging import getLogger

from recbole.data import utils as recbole_data_utils
from recbole.data.utils import create_samplers
from recbole.utils import ModelType

import dataset_atomic
from recbole_hybrid.data.dataloader import CandidateFullSortEvalDataLoader, TrainUserDataLoader
from recbole_hybrid.data.dataset import HybridDataset
from recbole_hybrid.data.training_split import check_supported, prepare_training_split

# RecBole model types that our Dataset serves; the others keep RecBole's own datasets
HYBRID_DATASET_TYPES = {ModelType.GENERAL, ModelType.CONTEXT, ModelType.TRADITIONAL}
# RecBole's autoencoders, which it trains on user rows (its get_dataloader register_table)
RECBOLE_USER_ROW_MODELS = {
    "MultiDAE",
    "MultiVAE",
    "MacridVAE",
    "CDAE",
    "ENMF",
    "RaCT",
    "RecVAE",
    "DiffRec",
    "LDiffRec",
}


def ensure_dataset_files(config):
    """Build the atomic files of a dataset with a converter the first time it is used."""
    root = os.path.dirname(os.path.normpath(config["data_path"]))
    dataset_atomic.ensure_atomic(config["dataset"], root)


def create_dataset(config):
    ensure_dataset_files(config)
    dataset_class = getattr(config.model_class, "dataset_class", None)
    if dataset_class is None and config["MODEL_TYPE"] in HYBRID_DATASET_TYPES:
        dataset_class = HybridDataset
    if dataset_class is None:
        return recbole_data_utils.create_dataset(config)
    return dataset_class(config)


def trains_on_user_rows(config):
    return (
        getattr(config.model_class, "input_rows", None) == "user"
        or config["model"] in RECBOLE_USER_ROW_MODELS
    )


def _train_loader(config, train_set, sampler):
    loader = (
        TrainUserDataLoader
        if trains_on_user_rows(config)
        else recbole_data_utils.get_dataloader(config, "train")
    )
    return loader(config, train_set, sampler, shuffle=config["shuffle"])


def _eval_loader(config, phase, eval_set, sampler, excluded=None):
    loader = recbole_data_utils.get_dataloader(config, phase)
    if excluded is None:
        return loader(config, eval_set, sampler, shuffle=False)
    if config["eval_args"]["mode"][phase] != "full":
        raise ValueError(
            f"protocol {config['protocol']} ranks candidate sets: it needs full ranking "
            "(eval_args mode: full)"
        )
    return CandidateFullSortEvalDataLoader(config, eval_set, sampler, excluded_items=excluded)


def data_preparation(config, dataset):
    """Split ``dataset`` by the protocol and build train / valid / test loaders.

    The test loader is a dict {split name: loader} for protocols with several test splits
    (cold: "normal" and "cold"). ``dataset.protocol_split`` keeps the split (fold-in history).
    """
    if config["MODEL_TYPE"] == ModelType.KNOWLEDGE or not isinstance(dataset, HybridDataset):
        check_supported(config)
        return recbole_data_utils.data_preparation(config, dataset)
    split = dataset.build_protocol()
    split.train = prepare_training_split(
        config, split.train
    )  # max_item_train_ratings, rating_rescale
    dataset.protocol_split = split
    split.train.split_role = "train"  # what review documents may be built from (data/reviews.py)
    history = split.train if split.history is None else split.history
    tests = {}
    for name, test_set in split.tests.items():
        train_sampler, valid_sampler, test_sampler = create_samplers(
            config, dataset, [history, split.valid, test_set]
        )
        tests[name] = _eval_loader(config, "test", test_set, test_sampler, split.excluded.get(name))
    train = _train_loader(config, split.train, train_sampler)
    valid = _eval_loader(config, "valid", split.valid, valid_sampler, split.excluded.get("normal"))
    getLogger().info(
        f"[Training]: train_batch_size = [{config['train_batch_size']}] "
        f"[Evaluation]: eval_batch_size = [{config['eval_batch_size']}] "
        f"protocol = [{config['protocol']}]"
    )
    return train, valid, tests["test"] if list(tests) == ["test"] else tests
