"""Loading a checkpoint: the dataset rebuilt and split as in training, the model built and
its weights checked and loaded."""

import os

from recbole.utils import init_seed

from recbole_hybrid import renamed_keys
from recbole_hybrid.checkpoint import check_identity, dataset_identity, read_checkpoint
from recbole_hybrid.data import create_dataset, data_preparation
from recbole_hybrid.data.protocols import fold_in_history
from recbole_hybrid.quick_start import build_model

# buffers the model's constructor rebuilds from the dataset: older checkpoints may lack them
REBUILT_BUFFERS = {"content_idf"}


def scoring_history(dataset, train_data):
    """The interactions the model scores its users from: the fold-in history, else training."""
    history = fold_in_history(dataset)
    return train_data._dataset if history is None else history


def load_data_and_model(model_file, data_path=None):
    """RecBole's ``load_data_and_model`` for the runner's checkpoints, without ray: returns
    (config, model, dataset, train_data, valid_data, test_data). The dataset is rebuilt and
    split from the saved config and seed (the same id remapping and split as in training),
    the model built as ``quick_start.prepare`` does (fold-in history included), loaded and
    put in eval mode. ``data_path``: the directory that now holds ``<dataset>/``."""
    checkpoint = read_checkpoint(model_file)  # its tensors checked against their digest
    config = checkpoint["config"]
    config.final_config_dict = renamed_keys.upgrade(
        config.final_config_dict
    )  # saved under old names
    if data_path is not None:
        config["data_path"] = os.path.join(data_path, config["dataset"])
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    check_identity(checkpoint.get("data_identity"), dataset_identity(dataset), model_file)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = build_model(config, dataset, train_data)
    load_weights(model, checkpoint, model_file)
    return config, model.eval(), dataset, train_data, valid_data, test_data


def load_weights(model, checkpoint, model_file):
    """state_dict and other parameters; a checkpoint may lack only ``REBUILT_BUFFERS``."""
    missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    missing = [key for key in missing if key.rsplit(".", 1)[-1] not in REBUILT_BUFFERS]
    if missing or unexpected:
        raise RuntimeError(
            f"{model_file} does not fit {type(model).__name__} as built from its config: "
            f"missing {missing}, unexpected {unexpected}"
        )
    model.load_other_parameter(checkpoint.get("other_parameter"))
