"""Time the inverse of an EASE Gram matrix: numpy's (RecBole's) or compat.spd_inverse (ours).

G = X^T X + reg * I, float32, with X a random 0/1 users x items matrix of the given density
(citeulike-a: 5,551 x 16,980 at 0.22%). Prints the seconds of the inverse alone and the largest
difference from the other method's result when --check. Time the two methods as whole
processes, in turn (A B A B ...), pinned to one core, e.g. with `/usr/bin/time -v` or hyperfine:

    taskset -c 0 python benchmarks/ease_inverse.py --method cholesky --items 8000
    taskset -c 0 python benchmarks/ease_inverse.py --method numpy --items 8000
"""

import argparse
import time


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--method", choices=["numpy", "cholesky"], required=True)
    parser.add_argument("--items", type=int, default=8000)
    parser.add_argument("--users", type=int, default=5551)
    parser.add_argument("--density", type=float, default=0.0022)
    parser.add_argument("--reg", type=float, default=250.0)  # RecBole's EASE reg_weight
    parser.add_argument(
        "--check", action="store_true", help="also compute the other method and compare"
    )
    args = parser.parse_args()

    import numpy as np
    import scipy.sparse as sp

    from recbole_hybrid.compat import spd_inverse

    x = sp.random(
        args.users,
        args.items,
        density=args.density,
        format="csr",
        dtype=np.float32,
        random_state=0,
        data_rvs=np.ones,
    )
    gram = (x.T @ x + args.reg * sp.identity(args.items, dtype=np.float32)).todense()
    invert = {"numpy": np.linalg.inv, "cholesky": spd_inverse}
    start = time.perf_counter()
    inverse = invert[args.method](gram)
    seconds = time.perf_counter() - start
    print(f"{args.method}: {args.items} items, inverse {seconds:.2f} s")
    if args.check:
        other = invert["numpy" if args.method == "cholesky" else "cholesky"](gram)
        print(
            f"largest difference from the other method: {np.abs(inverse - other).max():.3g} "
            f"(largest entry {np.abs(inverse).max():.3g})"
        )


if __name__ == "__main__":
    main()
