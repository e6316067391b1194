"""Configuration keys renamed so that the shared content VAE has one name per setting in every
model (CVAE's ``vae_*`` and MD-CVAE's ``t_*`` keys became ``content_*``). The old names and
values are still read, with a warning, until release ``REMOVED_IN``; checkpoints and benchmark
records saved with them are read with today's names."""

import warnings

REMOVED_IN = "0.3.0"
RENAMED = {  # old key -> key today
    "vae_hidden_sizes": "content_hidden_sizes",
    "content_hidden_size": "content_hidden_sizes",
    "vae_tied": "content_tied",
    "vae_activation": "content_activation",
    "vae_likelihood": "content_likelihood",
    "vae_batch_size": "content_batch_size",
    "t_batch_size": "content_batch_size",
    "t_epochs": "content_epochs",
    "t_learning_rate": "content_learning_rate",
}
RENAMED_VALUES = {"content_norm": {"item_max": "max"}}  # key -> {old value: value today}


def today_value(key, value):
    return RENAMED_VALUES.get(key, {}).get(value, value) if isinstance(value, str) else value


def upgrade(settings, source=None):
    """``settings`` (a dict) with today's keys and values, in the same order. ``source``: where
    they come from, named in a warning for each old name (None: no warning)."""
    upgraded = {}
    for key, value in settings.items():
        new_key, new_value = RENAMED.get(key, key), today_value(RENAMED.get(key, key), value)
        if (new_key, new_value) == (key, value):
            upgraded.setdefault(key, value)
            continue
        other = settings.get(new_key, new_value) if new_key != key else new_value
        if today_value(new_key, other) != new_value:
            raise ValueError(
                f"{source or 'settings'} give both [{key}] = {value!r} "
                f"and [{new_key}] = {other!r}: "
                f"{key} is the old name of {new_key}; keep {new_key} only"
            )
        if source is not None:
            old = key if new_key != key else f"{key}: {value}"
            warnings.warn(
                f"[{old}] in {source} is deprecated: use [{new_key}: {new_value}] "
                f"(the old name is read until release {REMOVED_IN})",
                FutureWarning,
                stacklevel=2,
            )
        upgraded[new_key] = new_value
    return upgraded
