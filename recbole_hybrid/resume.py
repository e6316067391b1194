"""``resume: True``: a run that was stopped (a kill, a crash, the end of a session) goes on from
where it stopped when it is started again with the same setting, code and data.

Training writes a snapshot (training_snapshot.py: weights, optimizers, the trainer's progress,
random states) into ``checkpoint_dir`` at most every ``RESUME_SECONDS``, after a validated
epoch. A run started with a snapshot of its own setting, code and data restores it and trains
the remaining epochs to the same result as an uninterrupted run; a snapshot of anything else is
replaced. The snapshot is removed once the test is done. One process only (not distributed)."""

from pathlib import Path

from recbole_hybrid.config import resolved_config
from recbole_hybrid.training_snapshot import TrainingSnapshot, code_digest

RESUME_SECONDS = 60.0  # at most this much training is lost when a run is stopped


def snapshot_path(config):
    return Path(config["checkpoint_dir"]) / f"{config['model']}-{config['dataset']}.snapshot"


def resumable(config, trainer, train_data, logger):
    """``fit``'s callback that writes the snapshot; a stored one of this run is restored into
    ``trainer`` first."""
    if not config["single_spec"]:
        raise ValueError(
            "resume: True is for runs in one process; a distributed run cannot resume "
            "(drop resume, or run with nproc 1)"
        )
    path = snapshot_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    identity = {
        "config": resolved_config(config),
        "code": code_digest(),
        "data": trainer.data_identity["files"],
    }
    snapshot = TrainingSnapshot(trainer, train_data, path, identity, RESUME_SECONDS)
    state = snapshot.stored()
    if state is not None:
        snapshot.restore(state)
        logger.info(f"resume: going on from {path}, at epoch {trainer.start_epoch}")
    elif path.exists():
        logger.info(
            f"resume: {path} is of another setting, code or data: training from the start "
            "(it will be replaced)"
        )
    else:
        logger.info(
            f"resume: training from the start; a snapshot goes to {path} at most every "
            f"{RESUME_SECONDS:.0f} s"
        )
    return snapshot.saver()


def finish(config):
    """The run is done: its snapshot is of no more use."""
    snapshot_path(config).unlink(missing_ok=True)
