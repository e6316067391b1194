"""Hyperparameter search with RecBole's HyperTuning (hyperopt); the best trial is chosen on
validation (valid_metric), test metrics are only reported.

    python run_hyper.py --model=MDCVAE --dataset=citeulike-a
        [--params_file=properties/hyper/MDCVAE.hyper] [--algo=exhaustive|random|bayes]
        [--max_evals=20] [--early_stop=10] [--config_files="a.yaml b.yaml"]
        [--output_file=hyper_MDCVAE_citeulike-a.result] [--resume=True] [--key=value ...]

Other --key=value pairs are fixed for every trial (read by Config); they must not be searched.
Each finished trial is logged to <output_file>.trials; --resume=True reuses those of this same
search (a search stopped part-way goes on where it stopped).
"""

import argparse

from recbole_hybrid.hyper import ALGOS, tune


def fixed_names(unknown):
    """Names of the extra ``--key=value`` arguments (RecBole's Config reads their values)."""
    return {arg[2:].split("=", 1)[0] for arg in unknown if arg.startswith("--") and "=" in arg}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", "-m", default="MDCVAE", help="model name (ours or RecBole's)")
    parser.add_argument("--dataset", "-d", default="ml-100k", help="dataset name")
    parser.add_argument(
        "--params_file", default=None, help="search space (default: properties/hyper/<model>.hyper)"
    )
    parser.add_argument(
        "--algo", default="exhaustive", choices=ALGOS, help="grid, random or TPE search"
    )
    parser.add_argument(
        "--max_evals", type=int, default=None, help="at most this many trials (also caps the grid)"
    )
    parser.add_argument(
        "--early_stop", type=int, default=10, help="stop after this many trials without improvement"
    )
    parser.add_argument(
        "--config_files", default=None, help="space-separated yaml files fixed for every trial"
    )
    parser.add_argument(
        "--output_file", default=None, help="every trial's valid and test results + the best"
    )
    parser.add_argument(
        "--search_seed", type=int, default=2020, help="seed of hyperopt's proposals"
    )
    parser.add_argument(
        "--resume",
        type=lambda v: v.lower() in ("true", "1", "yes"),
        default=False,
        help="True: reuse the finished trials of this same search (<output_file>.trials)",
    )
    args, unknown = parser.parse_known_args()
    output_file = args.output_file or f"hyper_{args.model}_{args.dataset}.result"
    result = tune(
        args.model,
        args.dataset,
        params_file=args.params_file,
        algo=args.algo,
        max_evals=args.max_evals,
        early_stop=args.early_stop,
        config_file_list=args.config_files.split() if args.config_files else None,
        output_file=output_file,
        seed=args.search_seed,
        fixed_names=fixed_names(unknown),
        trial_log_file=output_file + ".trials",
        resume=args.resume,
        command_line=[a for a in unknown if a.startswith("--") and "=" in a],
    )
    best = result["best"]
    print(f"best params (chosen on validation): {best['params']}")
    print(f"best valid result: {best['best_valid_result']}")
    print(f"its test result: {best['test_result']}")
    print(f"all {len(result['trials'])} trials: {output_file}")


if __name__ == "__main__":
    main()
