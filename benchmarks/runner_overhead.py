"""Our runner vs RecBole's run_recbole, same model and config, one process each:

    python benchmarks/runner_overhead.py ours   BPR ml-100k
    python benchmarks/runner_overhead.py recbole BPR ml-100k

Time the two commands side by side (e.g. `/usr/bin/time -v`, hyperfine) and report the
ratio ours / recbole. RecBole's quick start needs ray importable (setuptools < 81, pinned).
"""

import sys

CONFIG = {"epochs": 5, "show_progress": False, "state": "WARNING", "stopping_step": 100}

if __name__ == "__main__":
    which, model, dataset = sys.argv[1:4]
    sys.argv = sys.argv[:1]
    import recbole_hybrid  # noqa: F401  (same compat patches for both runners)

    if which == "ours":
        from recbole_hybrid.quick_start import run_recbole_hybrid as run
    else:
        from recbole.quick_start import run_recbole as run
    result = run(model=model, dataset=dataset, config_dict=CONFIG)
    print(which, dict(result["test_result"]))
