"""Config: RecBole's Config that knows this package's models and yaml files.

Priority, lowest first (later wins):
  RecBole's overall.yaml < ours (``properties/overall.yaml``: package-wide keys)
  < model yaml of every class in the model's MRO, base class first, RecBole's file then ours
    (so ``MDCVAE(MultiVAE)`` starts from MultiVAE's defaults)
  < dataset yaml (RecBole's, then ours)
  < protocol yaml (``properties/protocol/<protocol>.yaml``; ``protocol`` from any source)
  < --config_files < config_dict < command line ``--key=value``

Every key given in a config file, config_dict or on the command line of run_recbole_hybrid.py /
run_hyper.py must be one that some yaml of RecBole or of this package declares (or one RecBole
sets itself): a mistyped key stops the run naming its source and the nearest known key, instead
of being ignored. Renamed keys (``renamed_keys.py``) are read under their new names, with a
warning. (Another program's --key=value options, pytest's say, are left alone.)
``check_config_keys: False`` turns the check off (a model of your own with its own keys).
"""

import difflib
import glob
import json
import os
import sys
from functools import lru_cache

import yaml

import recbole
from recbole.config import Config as RecBoleConfig

from recbole_hybrid import distributed, renamed_keys
from recbole_hybrid.properties_path import properties_dir
from recbole_hybrid.utils import get_model

# keys of the machine or the run's output, not of the setting (left out of a record's config)
MACHINE_KEYS = {
    "device",
    "data_path",
    "checkpoint_dir",
    "gpu_id",
    "use_gpu",
    "state",
    "show_progress",
    "log_wandb",
    "wandb_project",
    "local_rank",
    "world_size",
    "nproc",
    "ip",
    "port",
    "offset",
    "single_spec",
    "worker",
    "shuffle",
    "config_files",
    "resume",
}


def json_safe(value):
    """``value`` as JSON gives it back (tuples as lists, other objects as strings, keys sorted)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def resolved_config(config):
    """The setting a run resolves to (every key, machine keys left out), JSON-safe: what a record
    stores, and what benchmarks/report.py compares with today's resolution of its command."""
    return json_safe({k: v for k, v in config.final_config_dict.items() if k not in MACHINE_KEYS})


RECBOLE_PROPERTIES = os.path.join(os.path.dirname(os.path.realpath(recbole.__file__)), "properties")
DEFAULT_PROTOCOL = "recbole"


# keys RecBole reads or sets without declaring them in a yaml, and the launchers' own options
# (run_recbole_hybrid.py, run_hyper.py: RecBole's Config also reads them from the command line)
UNDECLARED_KEYS = {
    "model",
    "dataset",
    "config_files",
    "device",
    "local_rank",
    "world_size",
    "single_spec",
    "nproc",
    "ip",
    "port",
    "offset",
    "group_offset",
    "MODEL_TYPE",
    "MODEL_INPUT_TYPE",
    "eval_type",
    "encoding",
    "valid_neg_sample_args",
    "test_neg_sample_args",
    "params_file",
    "algo",
    "max_evals",
    "early_stop",
    "output_file",
    "search_seed",
    "check_config_keys",
}
# RecBole's dataset download lists: dataset names, not keys
URL_LISTS = ("url.yaml", "kg_url.yaml")
LAUNCHERS = ("run_recbole_hybrid.py", "run_hyper.py")  # whose --key=value are all configuration


def known_keys():
    """Every key declared by a yaml of RecBole's or ours, and ``UNDECLARED_KEYS``."""
    return _declared_keys(str(properties_dir()))


@lru_cache(maxsize=4)
def _declared_keys(ours):
    keys = set(UNDECLARED_KEYS)
    for root in (RECBOLE_PROPERTIES, ours):
        for path in glob.glob(os.path.join(root, "**", "*.yaml"), recursive=True):
            if os.path.basename(path) not in URL_LISTS:
                with open(path, encoding="utf-8") as f:
                    keys |= set(yaml.safe_load(f) or {})
    return frozenset(keys)


def check_known_keys(keys, source):
    """A clear error for the first key of ``source`` no yaml declares, with the nearest known
    one."""
    known = known_keys()
    for key in keys:
        if key not in known and key not in renamed_keys.RENAMED:
            near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"did you mean [{near[0]}]?" if near else "no known key is close"
            raise ValueError(
                f"unknown configuration key [{key}] in {source}: {hint} (every key a model reads "
                "is declared in properties/; check_config_keys: False turns this check off)"
            )


def metric_kinds(metrics):
    from recbole.evaluator.register import metric_types

    return {metric_types.get(str(m).lower()) for m in metrics or []} - {None}


def check_protocol_evaluation(final, protocol_config, external):
    """What the protocol's yaml fixes about evaluation is not silently replaced by another source
    (a dataset yaml in --config_files, a config_dict): the split (eval_args) stays the protocol's
    (protocol ``recbole`` is RecBole's own split: its eval_args are yours to set), metrics stay
    of its kind (ratings or rankings), and valid_metric is one of the metrics."""
    protocol = final.get("protocol")
    fixed_split = protocol != DEFAULT_PROTOCOL and "eval_args" in protocol_config
    if (
        fixed_split
        and "eval_args" in external
        and external["eval_args"] != protocol_config["eval_args"]
    ):
        raise ValueError(
            f"protocol {protocol} splits with eval_args {protocol_config['eval_args']}; "
            f"your settings give {external['eval_args']}: drop eval_args from them, "
            "or choose another protocol"
        )
    if "metrics" in protocol_config and metric_kinds(final.get("metrics")) - metric_kinds(
        protocol_config["metrics"]
    ):
        raise ValueError(
            f"protocol {protocol} evaluates {protocol_config['metrics']}; your settings ask for "
            f"{final.get('metrics')}, metrics of another kind (ratings vs rankings) "
            "that it cannot compute"
        )
    valid, names = (
        str(final.get("valid_metric") or ""),
        {str(m).lower() for m in final.get("metrics") or []},
    )
    if valid and valid.split("@")[0].lower() not in names:
        raise ValueError(
            f"valid_metric {valid} is not among the metrics {final.get('metrics')} "
            f"(protocol {protocol}): choose one of them"
        )


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
    def _load_config_files(self, file_list):
        loaded = super()._load_config_files(file_list)
        self._config_file_keys = {}
        for path in file_list or []:
            with open(path, encoding="utf-8") as f:
                self._config_file_keys[path] = list(
                    yaml.load(f.read(), Loader=self.yaml_loader) or {}
                )
        return loaded

    def _merge_external_config_dict(self):
        files = ", ".join(self._config_file_keys) or "config files"
        self.file_config_dict = renamed_keys.upgrade(self.file_config_dict, f"config file {files}")
        self.variable_config_dict = renamed_keys.upgrade(self.variable_config_dict, "config_dict")
        self.cmd_config_dict = renamed_keys.upgrade(self.cmd_config_dict, "the command line")
        super()._merge_external_config_dict()
        if self.external_config_dict.get("check_config_keys", True) is False:
            return
        for path, keys in self._config_file_keys.items():
            check_known_keys(keys, f"config file {path}")
        check_known_keys(self.variable_config_dict, "config_dict")
        if (
            os.path.basename(sys.argv[0]) in LAUNCHERS
        ):  # another program's options are not ours to judge
            check_known_keys(self.cmd_config_dict, "the command line (--key=value)")

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
        self._register_dataset_keys(
            self._update_internal_config_dict(os.path.join(ours, "overall.yaml")) or {}
        )
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
        self._protocol_config = self._update_internal_config_dict(protocol_file) or {}
        self._register_dataset_keys(self._protocol_config)
        self.internal_config_dict["protocol"] = protocol

    def _set_default_parameters(self):
        check_protocol_evaluation(
            self.final_config_dict, self._protocol_config, self.external_config_dict
        )
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
