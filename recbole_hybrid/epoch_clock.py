"""Mixed into every trainer of ``get_trainer``: each training epoch and each validation pass is
timed, and the trainer's ``epoch_hooks`` are called after it with (stage, epoch, seconds, output),
stage "train" (output: the loss) or "valid" (output: (score, result)). The benchmarks read their
timings here, through RecBole's own ``fit``."""

import time


class EpochClock:
    @property
    def epoch_hooks(self):
        """Callables hook(stage, epoch, seconds, output); append to add one."""
        if "_epoch_hooks" not in self.__dict__:
            self._epoch_hooks = []
        return self._epoch_hooks

    def _train_epoch(self, train_data, epoch_idx, *args, **kwargs):
        start = time.perf_counter()
        loss = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
        self._tell("train", epoch_idx, time.perf_counter() - start, loss)
        return loss

    def _valid_epoch(self, valid_data, *args, **kwargs):
        start = time.perf_counter()
        result = super()._valid_epoch(valid_data, *args, **kwargs)
        self._tell("valid", None, time.perf_counter() - start, result)
        return result

    def _tell(self, stage, epoch, seconds, output):
        for hook in self.epoch_hooks:
            hook(stage, epoch, seconds, output)


class EpochLog:
    """A hook that keeps what benchmarks report: seconds of each training epoch and validation
    pass, and each validation (score, result)."""

    def __init__(self):
        self.train_seconds, self.valid_seconds, self.valid_outputs = [], [], []

    def __call__(self, stage, epoch, seconds, output):
        if stage == "train":
            self.train_seconds.append(seconds)
        else:
            self.valid_seconds.append(seconds)
            self.valid_outputs.append(output)
