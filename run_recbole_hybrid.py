"""python run_recbole_hybrid.py --model=MultiVAE --dataset=citeulike-a [--config_files="a.yaml b.yaml"] [--key=value ...]"""
import argparse

from recbole_hybrid.quick_start import run_recbole_hybrid

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", "-m", type=str, default="MultiVAE", help="model name (ours or RecBole's)")
    parser.add_argument("--dataset", "-d", type=str, default="ml-100k", help="dataset name")
    parser.add_argument("--config_files", type=str, default=None, help="space-separated yaml files")
    args, _ = parser.parse_known_args()  # other --key=value pairs are read by Config
    config_file_list = args.config_files.strip().split(" ") if args.config_files else None
    run_recbole_hybrid(model=args.model, dataset=args.dataset, config_file_list=config_file_list)
