"""A search's finished trials, kept so that the search started again reuses them
(``run_hyper.py --resume=True``).

The log is JSON lines: a header with the search's identity (model, dataset, space, algo, search
seed, fixed settings, the config files' content, the command line's other keys, the code
digest), then one line per finished trial: its parameters, its result and the digests of the
dataset's atomic files it ran on. With ``resume`` a trial is reused when the search proposes its
parameters again under the same identity and the same atomic files (hyperopt's proposals are
seeded, so a search started again proposes them in the same order); otherwise, or when the log
is of another search, the log starts anew."""

import json
from pathlib import Path

from recbole_hybrid.config import json_safe


class TrialLog:
    """The log at ``path`` of the search of ``identity``: ``reusable(key)`` answers a trial it
    holds (with ``resume``), ``add(key, result)`` logs one that has run."""

    def __init__(self, path, identity, data_files, resume, log=print):
        self.path, self.data_files = Path(path), json_safe(data_files)
        header = {"identity": json_safe(identity)}
        self.kept = {}
        lines = self.path.read_text().splitlines() if self.path.is_file() else []
        if resume and lines and json.loads(lines[0]) == header:
            entries = [json.loads(line) for line in lines[1:] if line.strip()]
            self.kept = {e["params"]: e for e in entries if e["data_files"] == self.data_files}
            log(
                f"[search] resume: {len(self.kept)} finished trials in {self.path} can be reused"
                + (
                    f" ({len(entries) - len(self.kept)} ran on other data)"
                    if len(entries) > len(self.kept)
                    else ""
                )
            )
            return
        if resume:
            log(
                f"[search] resume: {self.path} "
                + ("is of another search (setting, space or code)" if lines else "has no trial")
                + ": every trial runs"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(header) + "\n")

    def reusable(self, key):
        """The result of the trial of parameters ``key`` logged before, or None."""
        entry = self.kept.get(key)
        return None if entry is None else entry["result"]

    def add(self, key, result):
        """Log a finished trial, with the atomic files it ran on (``data_files`` of its result, as
        objective_function gives them; else the files when the search started)."""
        entry = {"params": key, "result": result}
        entry["data_files"] = result.get("data_files", self.data_files)
        with self.path.open("a") as out:
            out.write(json.dumps(json_safe(entry)) + "\n")
