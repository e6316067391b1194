"""Progress of long loops that RecBole's own bars do not cover (content pretraining, DualNet's
stacked autoencoders): one line per stage when it starts, then at most one every
``progress_interval`` seconds and one when it ends, with the epoch, the loss and an estimate
of the time left."""

import time
from logging import getLogger


class ProgressLog:
    """``report(stage, done, total, loss=None)``: call with done = 0 when a stage starts, then
    after each of its ``total`` steps."""

    def __init__(self, interval=10.0, log=None, clock=time.monotonic):
        self.interval, self.log, self.clock = interval, log or getLogger().info, clock
        self.started, self.last = {}, None

    def __call__(self, stage, done, total, loss=None):
        now = self.clock()
        if done == 0:
            self.started[stage] = self.last = now
            self.log(f"{stage}: {total} epochs")
            return
        start = self.started.setdefault(stage, now)
        if done < total and self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - start
        left = elapsed / done * (total - done)
        self.log(
            f"{stage}: epoch {done}/{total}"
            + ("" if loss is None else f", loss {loss:.4g}")
            + f", {elapsed:.0f} s"
            + (f", about {left:.0f} s left" if done < total else ", done")
        )
