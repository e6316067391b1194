"""Config: RecBole's Config that knows this package's models and yaml files.

Priority, lowest first (later wins):
  RecBole's overall.yaml
  < model yaml of every class in the model's MRO, base class first, RecBole's file then ours
    (so ``MDCVAE(MultiVAE)`` starts from MultiVAE's defaults)
  < dataset yaml (RecBole's, then ours)
  < protocol yaml (``properties/protocol/<protocol>.yaml``; ``protocol`` from any source)
  < --config_files < config_dict < command line ``--key=value``
"""
import os

import recbole
from recbole.config import Config as RecBoleConfig

from recbole_hybrid import distributed
from recbole_hybrid.properties_path import properties_dir
from recbole_hybrid.utils import get_model

RECBOLE_PROPERTIES = os.path.join(os.path.dirname(os.path.realpath(recbole.__file__)), "properties")
DEFAULT_PROTOCOL = "recbole"


def model_yaml_files(model_class):
    """Model yaml files of ``model_class`` and its bases, base classes first."""
    files = []
    for cls in reversed(model_class.__mro__):
        for root in (RECBOLE_PROPERTIES, properties_dir()):
            path = os.path.join(root, "model", cls.__name__ + ".yaml")
            if os.path.isfile(path) and path not in files:
                files.append(path)
    return files


def protocol_names():
    return sorted(p[:-5] for p in os.listdir(properties_dir() / "protocol") if p.endswith(".yaml"))


def fixed_split_files(config):
    """RecBole benchmark files of protocol fixed: ``P10`` or ``P10-random`` + fixed_seed."""
    split = str(config["fixed_split"]).replace("=", "")
    if split.endswith("-random"):
        split = f"{split}-s{config['fixed_seed']}"
    return [f"{split}-train", f"{split}-valid", f"{split}-test"]


class Config(RecBoleConfig):
    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
        if isinstance(model, str):
            model_class = get_model(model)
            return super()._get_model_and_dataset(model_class, dataset)
        return super()._get_model_and_dataset(model, dataset)

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        ours = properties_dir()
        dataset_files = [
            os.path.join(RECBOLE_PROPERTIES, "dataset", dataset + ".yaml"),
            os.path.join(ours, "dataset", dataset + ".yaml"),
        ]
        for path in model_yaml_files(model_class):
            self._update_internal_config_dict(path)
        for path in dataset_files:
            if os.path.isfile(path):
                self._register_dataset_keys(self._update_internal_config_dict(path) or {})
        protocol = self.external_config_dict.get(
            "protocol", self.internal_config_dict.get("protocol", DEFAULT_PROTOCOL)
        )
        protocol_file = os.path.join(ours, "protocol", f"{protocol}.yaml")
        if not os.path.isfile(protocol_file):
            raise ValueError(
                f"unknown protocol [{protocol}]: no {protocol_file}; "
                f"known protocols: {protocol_names()}"
            )
        self._register_dataset_keys(self._update_internal_config_dict(protocol_file) or {})
        self.internal_config_dict["protocol"] = protocol

    def _set_default_parameters(self):
        super()._set_default_parameters()
        if self.final_config_dict["protocol"] == "fixed":
            self.final_config_dict["benchmark_filename"] = fixed_split_files(self.final_config_dict)

    def _init_device(self):
        """RecBole's, except that a rank of a distributed run (``local_rank`` set, or started
        by torchrun) joins its process group with its device's backend (distributed.py)."""
        cfg = self.final_config_dict
        distributed.adopt_torchrun(cfg)
        local_rank = cfg.pop("local_rank", None)
        super()._init_device()  # gpu_id, CUDA_VISIBLE_DEVICES, and the device RecBole would use
        if local_rank is not None:
            distributed.join(cfg, local_rank)

    def _register_dataset_keys(self, loaded):
        """Keys of dataset/protocol yaml count as dataset arguments (RecBole's cache key)."""
        self.parameters["Dataset"] += [k for k in loaded if k not in self.parameters["Dataset"]]
