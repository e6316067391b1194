"""Model / trainer / yaml lookup, MRO merge and priorities."""

import pytest
import yaml
from recbole.model.general_recommender import MultiVAE
from recbole.trainer import Trainer, TraditionalTrainer
from recbole.utils import ModelType

import recbole_hybrid.config as config_module
from recbole_hybrid.config import Config, model_yaml_files
from recbole_hybrid.model.general_recommender.contentknn import ContentKNN
from recbole_hybrid.utils import get_model, get_trainer


class MultiVAEChild(MultiVAE):
    """A model of ours built on a RecBole model, as MDCVAE(MultiVAE)."""


def test_get_model_ours_then_recbole():
    assert get_model("ContentKNN") is ContentKNN
    assert get_model("MultiVAE") is MultiVAE
    with pytest.raises(
        ValueError, match="neither a recbole_hybrid model nor a RecBole model"
    ) as err:
        get_model("NoSuchModel")
    assert "lightgbm" not in str(err.value)  # RecBole's optional exlib is not the user's problem
    for typed, meant in (
        ("mdcvae", "MDCVAE"),
        ("multivae", "MultiVAE"),
        ("ContentKN", "ContentKNN"),
    ):
        with pytest.raises(ValueError, match=rf"model \[{typed}\] .* did you mean {meant}\b"):
            get_model(typed)


def test_get_trainer_falls_back_to_recbole(monkeypatch):
    assert (
        get_trainer(ModelType.GENERAL, "MultiVAE").__bases__[-1] is Trainer
    )  # with the package's checks
    assert get_trainer(ModelType.TRADITIONAL, "ContentKNN").__bases__[-1] is TraditionalTrainer
    import recbole_hybrid.trainer as trainer_module

    class ContentKNNTrainer(Trainer):
        pass

    monkeypatch.setattr(trainer_module, "ContentKNNTrainer", ContentKNNTrainer, raising=False)
    assert get_trainer(ModelType.TRADITIONAL, "ContentKNN").__bases__[-1] is ContentKNNTrainer


def test_recbole_model_gets_its_defaults():
    config = Config("MultiVAE", "ml-100k", config_dict={"state": "ERROR"})
    assert config["anneal_cap"] == 0.2 and config["mlp_hidden_size"] == [600]
    assert config["protocol"] == "recbole"
    assert config["eval_args"]["split"] == {"RS": [0.8, 0.1, 0.1]}


@pytest.fixture
def fake_properties(tmp_path, monkeypatch):
    for sub in ("model", "dataset", "protocol"):
        (tmp_path / sub).mkdir()
    (tmp_path / "overall.yaml").write_text(
        (config_module.properties_dir() / "overall.yaml").read_text()
    )
    (tmp_path / "model" / "MultiVAEChild.yaml").write_text("anneal_cap: 0.5\nlayer_key: model\n")
    (tmp_path / "dataset" / "ml-100k.yaml").write_text("layer_key: dataset\nds_key: 1\n")
    (tmp_path / "protocol" / "recbole.yaml").write_text("layer_key: protocol\n")
    (tmp_path / "protocol" / "other.yaml").write_text("layer_key: other\n")
    monkeypatch.setattr(config_module, "properties_dir", lambda: tmp_path)
    return tmp_path


def test_mro_merge_base_defaults_under_our_yaml(fake_properties):
    files = [f.rsplit("/", 1)[-1] for f in model_yaml_files(MultiVAEChild)]
    assert files == ["MultiVAE.yaml", "MultiVAEChild.yaml"]
    config = Config(MultiVAEChild, "ml-100k", config_dict={"state": "ERROR"})
    assert config["mlp_hidden_size"] == [600]  # from RecBole's MultiVAE.yaml
    assert config["anneal_cap"] == 0.5  # ours overrides the base class'
    assert config["model"] == "MultiVAEChild"


def test_priority_model_dataset_protocol_external(fake_properties, tmp_path):
    config = Config(MultiVAEChild, "ml-100k", config_dict={"state": "ERROR"})
    assert config["layer_key"] == "protocol"  # protocol > dataset > model
    assert config["ds_key"] == 1
    config = Config(MultiVAEChild, "ml-100k", config_dict={"state": "ERROR", "protocol": "other"})
    assert config["layer_key"] == "other"
    extra = tmp_path / "extra.yaml"
    extra.write_text("layer_key: file\n")
    config = Config(
        MultiVAEChild, "ml-100k", config_file_list=[str(extra)], config_dict={"state": "ERROR"}
    )
    assert config["layer_key"] == "file"
    config = Config(
        MultiVAEChild,
        "ml-100k",
        config_file_list=[str(extra)],
        config_dict={"state": "ERROR", "layer_key": "dict"},
    )
    assert config["layer_key"] == "dict"


def test_command_line_wins(fake_properties, monkeypatch):
    monkeypatch.setattr("sys.argv", ["run", "--layer_key=cmd", "--anneal_cap=0.7"])
    config = Config(MultiVAEChild, "ml-100k", config_dict={"layer_key": "dict", "state": "ERROR"})
    assert config["layer_key"] == "cmd" and config["anneal_cap"] == 0.7


def test_unknown_protocol_is_named():
    with pytest.raises(ValueError, match=r"unknown protocol \[nope\].*known protocols"):
        Config("MultiVAE", "ml-100k", config_dict={"protocol": "nope"})


def test_unknown_key_stops_with_the_nearest_known_key(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["run"])
    with pytest.raises(
        ValueError,
        match=r"unknown configuration key \[learnig_rate\] in config_dict: "
        r"did you mean \[learning_rate\]",
    ):
        Config("MultiVAE", "ml-100k", config_dict={"learnig_rate": 0.01})
    settings = tmp_path / "mine.yaml"
    settings.write_text("epochs: 3\nvalid_metirc: ndcg@10\n")
    with pytest.raises(
        ValueError,
        match=rf"\[valid_metirc\] in config file {settings}: did you mean \[valid_metric\]",
    ):
        Config("MultiVAE", "ml-100k", config_file_list=[str(settings)])
    monkeypatch.setattr("sys.argv", ["run_recbole_hybrid.py", "--stoping_step=3"])
    with pytest.raises(
        ValueError, match=r"\[stoping_step\] in the command line .* did you mean \[stopping_step\]"
    ):
        Config("MultiVAE", "ml-100k")
    monkeypatch.setattr(
        "sys.argv", ["run_recbole_hybrid.py", "--stoping_step=3", "--check_config_keys=False"]
    )
    assert (
        Config("MultiVAE", "ml-100k", config_dict={"state": "ERROR"})["stoping_step"] == 3
    )  # the check is off
    monkeypatch.setattr(
        "sys.argv", ["pytest", "--basetemp=/tmp/x"]
    )  # another program's own options
    assert Config("MultiVAE", "ml-100k", config_dict={"state": "ERROR"})["basetemp"] == "/tmp/x"


def test_every_key_the_package_reads_is_declared():
    import re
    from pathlib import Path

    import recbole_hybrid
    from recbole_hybrid.config import known_keys

    read = set()
    for path in Path(recbole_hybrid.__file__).parent.rglob("*.py"):
        read |= set(re.findall(r"config\[\s*[\"'](\w+)[\"']\s*\]", path.read_text()))
    assert len(read) > 50
    assert sorted(read - known_keys()) == []


def test_every_key_of_ours_has_a_one_line_comment():
    """A key this package declares (model, protocol and package-wide yaml; RecBole's own keys are
    documented by RecBole) says on its line what it means."""
    import glob
    import os

    from recbole_hybrid.config import RECBOLE_PROPERTIES, URL_LISTS
    from recbole_hybrid.properties_path import properties_dir

    recbole_keys = set()
    for path in glob.glob(os.path.join(RECBOLE_PROPERTIES, "**", "*.yaml"), recursive=True):
        if os.path.basename(path) not in URL_LISTS:
            recbole_keys |= set(yaml.safe_load(open(path, encoding="utf-8")) or {})
    ours = properties_dir()
    bare = []
    for path in [
        ours / "overall.yaml",
        *sorted((ours / "model").glob("*.yaml")),
        *sorted((ours / "protocol").glob("*.yaml")),
    ]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            key = line.split(":", 1)[0]
            if key.isidentifier() and ":" in line and key not in recbole_keys and "#" not in line:
                bare.append(f"{path.name}:{number}: {key}")
    assert bare == []


@pytest.mark.parametrize(
    "old, value, new, value_today",
    [
        ("vae_hidden_sizes", [64], "content_hidden_sizes", [64]),
        ("t_batch_size", 100, "content_batch_size", 100),
        ("content_norm", "item_max", "content_norm", "max"),
    ],
)
def test_renamed_keys_are_read_under_their_new_name_with_a_warning(
    old, value, new, value_today, tmp_path, monkeypatch
):
    """One vocabulary (issue 22): an old name (or value) still works for one release, from
    config_dict, a config file or the command line, and says what to write instead."""
    model = "CVAE" if old != "t_batch_size" else "MDCVAE"
    with pytest.warns(
        FutureWarning, match=rf"\[{old}.*\] in config_dict is deprecated: use \[{new}"
    ):
        config = Config(model, "ml-100k", config_dict={old: value, "state": "ERROR"})
    assert config[new] == value_today
    settings = tmp_path / "mine.yaml"
    settings.write_text(yaml.safe_dump({old: value}))
    with pytest.warns(FutureWarning, match=rf"in config file {settings} is deprecated"):
        assert (
            Config(
                model, "ml-100k", config_file_list=[str(settings)], config_dict={"state": "ERROR"}
            )[new]
            == value_today
        )
    monkeypatch.setattr("sys.argv", ["run_recbole_hybrid.py", f"--{old}={value}"])
    with pytest.warns(FutureWarning, match="in the command line is deprecated"):
        assert Config(model, "ml-100k", config_dict={"state": "ERROR"})[new] == value_today


def test_saved_settings_are_read_under_todays_names_silently():
    """What a checkpoint or a benchmark record saved (recommend, benchmarks/stale.py): old keys and
    values under today's names, order kept, no warning (the user did not write them)."""
    import warnings

    from recbole_hybrid.renamed_keys import upgrade

    saved = {
        "vae_hidden_sizes": [200, 100],
        "lambda_v": 10.0,
        "content_norm": "item_max",
        "t_epochs": 1,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        today = upgrade(saved)
    assert list(today.items()) == [
        ("content_hidden_sizes", [200, 100]),
        ("lambda_v", 10.0),
        ("content_norm", "max"),
        ("content_epochs", 1),
    ]


def test_an_old_and_a_new_name_that_disagree_stop_the_run():
    with pytest.raises(ValueError, match=r"both \[vae_tied\] = True and \[content_tied\] = False"):
        Config("CVAE", "ml-100k", config_dict={"vae_tied": True, "content_tied": False})
    with pytest.warns(FutureWarning):
        assert (
            Config(
                "CVAE",
                "ml-100k",
                config_dict={"vae_tied": False, "content_tied": False, "state": "ERROR"},
            )["content_tied"]
            is False
        )


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"protocol": "rating", "metrics": ["Recall", "NDCG"], "valid_metric": "ndcg@10"},
            r"protocol rating evaluates \['RMSE', 'MAE'\]; "
            r"your settings ask for \['Recall', 'NDCG'\]",
        ),
        (
            {"protocol": "loo99", "valid_metric": "recall@10"},
            r"valid_metric recall@10 is not among the metrics",
        ),
        (
            {
                "protocol": "rating",
                "eval_args": {
                    "split": {"RS": [0.8, 0.1, 0.1]},
                    "group_by": "user",
                    "order": "RO",
                    "mode": "full",
                },
            },
            r"protocol rating splits with eval_args",
        ),
    ],
)
def test_settings_cannot_silently_replace_the_protocols_evaluation(
    settings, message, tmp_path, monkeypatch
):
    monkeypatch.setattr("sys.argv", ["run"])
    dataset_yaml = tmp_path / "mine.yaml"  # as a user's dataset yaml given with --config_files
    dataset_yaml.write_text(yaml.safe_dump({k: v for k, v in settings.items() if k != "protocol"}))
    with pytest.raises(ValueError, match=message):
        Config(
            "MultiVAE",
            "ml-100k",
            config_file_list=[str(dataset_yaml)],
            config_dict={"protocol": settings["protocol"], "state": "ERROR"},
        )
