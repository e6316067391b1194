"""python run_recbole_hybrid.py --model=MultiVAE --dataset=citeulike-a
    [--config_files="a.yaml b.yaml"] [--key=value ...]

Distributed (README, "Distributed training"): --nproc=2 on one machine; several machines:
--nproc=N --world_size=W --group_offset=<rank of this machine's first process> --ip=<first
machine> --port=P on each; or torchrun ... run_recbole_hybrid.py --model=...
"""

import argparse

from recbole_hybrid.quick_start import run_recbole_hybrid

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", "-m", type=str, default="MultiVAE", help="model name (ours or RecBole's)"
    )
    parser.add_argument("--dataset", "-d", type=str, default="ml-100k", help="dataset name")
    parser.add_argument("--config_files", type=str, default=None, help="space-separated yaml files")
    parser.add_argument("--nproc", type=int, default=1, help="processes (ranks) on this machine")
    parser.add_argument(
        "--world_size", type=int, default=-1, help="ranks on all machines (default: nproc)"
    )
    parser.add_argument(
        "--ip", type=str, default="localhost", help="address of the machine of rank 0"
    )
    parser.add_argument("--port", type=int, default=5678, help="free port on the machine of rank 0")
    parser.add_argument(
        "--group_offset", "--offset", type=int, default=0, help="global rank of local rank 0"
    )
    args, _ = parser.parse_known_args()  # other --key=value pairs are read by Config
    config_file_list = args.config_files.strip().split(" ") if args.config_files else None
    run_recbole_hybrid(
        model=args.model,
        dataset=args.dataset,
        config_file_list=config_file_list,
        nproc=args.nproc,
        world_size=args.world_size,
        ip=args.ip,
        port=args.port,
        group_offset=args.group_offset,
    )
