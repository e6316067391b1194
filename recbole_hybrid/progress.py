"""Progress of long loops that RecBole's own bars do not cover (content pretraining, DualNet's
stacked autoencoders): one line per stage when it starts, then at most one every
``progress_interval`` seconds and one when it ends, with the epoch, the loss and an estimate
of the time left. ``heartbeat``: a line every so often during one long call (a large inverse)."""

import threading
import time
from contextlib import contextmanager
from logging import getLogger

HEARTBEAT_SECONDS = 30.0  # how often a long call says it is still running


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


@contextmanager
def heartbeat(describe, interval=None, log=None):
    """While the block runs, log ``describe(seconds so far)`` every ``interval`` seconds (default
    ``HEARTBEAT_SECONDS``) from a
    background thread (torch's LAPACK calls release the GIL); none once the block has ended."""
    log, interval = log or getLogger().info, interval or HEARTBEAT_SECONDS
    stop, started = threading.Event(), time.monotonic()

    def beat():
        while not stop.wait(interval):
            log(describe(time.monotonic() - started))

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
