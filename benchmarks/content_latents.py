"""How much do CVAE's content latents know? Content-only retrieval on a fixed split.

    python benchmarks/content_latents.py --dataset citeulike-t --split P=1 \
        [--set pretrain_epochs=30 content_norm=max ...] \
        [--out benchmarks/results/content_latents.md]

Builds CVAE on the split, pretrains (or loads from the pretraining cache) its content VAE and
scores each test user's items from content alone, profile = the sum of her training items:
  tfidf   cosine between TF-IDF rows of CVAE's input (ContentKNN's weighting; it scores a
          user's summed profile instead),
  lsa     cosine between 50-d truncated SVDs of those rows (a linear latent of CVAE's size),
  mu      cosine between the VAE's posterior means mu_j (CVAE's theta),
and CVAE's first ALS solution u_i, v_j (one sweep, V pulled toward theta) with theta = mu and
with theta = the LSA vectors at 0.3, 1 and 3 times mu's mean norm. Test recall as the
benchmark tables (training and validation items masked). Also: mu's active dimensions (std
over items > 0.1).
"""

import argparse
import shlex
import sys

import numpy as np
import scipy.sparse as sp
import torch
import yaml
from sklearn.decomposition import TruncatedSVD


from recbole_hybrid.config import Config
from recbole_hybrid.model.layers import l2_normalize_rows, tfidf_rows
from recbole_hybrid.quick_start import prepare

BENCH_SETTINGS = {"pretrain_layer_epochs": 30, "pretrain_latent_epochs": 30, "pretrain_epochs": 0}
CUTOFFS = (50, 300)


def split_matrices(train_data, valid_data, test_data):
    as_csr = lambda data: data._dataset.inter_matrix(form="csr").astype(np.float32)
    return as_csr(train_data), as_csr(valid_data), as_csr(test_data)


def recall_at(score_users, users, seen, truth, cutoffs=CUTOFFS, batch=512):
    """Mean over ``users`` of hits in the top M / |test items|, ``seen`` items masked."""
    hits = {m: [] for m in cutoffs}
    for start in range(0, len(users), batch):
        u = users[start : start + batch]
        scores = np.asarray(score_users(u), dtype=np.float64)
        scores[seen[u].nonzero()] = -np.inf
        order = np.argsort(-scores, axis=1)[:, : max(cutoffs)]
        relevant = np.take_along_axis(truth[u].toarray(), order, 1)
        for m in cutoffs:
            hits[m].append(relevant[:, :m].sum(1) / truth[u].getnnz(axis=1))
    return {m: float(np.concatenate(h).mean()) for m, h in hits.items()}


def unit_rows(matrix):
    if sp.issparse(matrix):
        return sp.csr_matrix(l2_normalize_rows(matrix))
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def profile_cosine(train, rows):
    """score(u, j) = sum over u's training items t of cos(row_t, row_j)."""
    rows = unit_rows(rows)
    if sp.issparse(rows):
        return lambda u: (train[u] @ rows @ rows.T).toarray()
    return lambda u: np.asarray(train[u] @ rows) @ rows.T


def als_scores(model, theta):
    """CVAE's first sweep from theta (V = theta, then U and V solved): scores u_i . v_j."""
    model.theta.copy_(torch.as_tensor(theta, dtype=model.theta.dtype))
    model.V.copy_(model.theta)
    model.als_sweep()
    users, items = model.U.clone(), model.item_vectors().clone()
    return lambda u: (users[torch.as_tensor(u)] @ items.T).numpy()


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", required=True, help="fixed split: P=1, P=10, P=1-random ...")
    parser.add_argument("--set", nargs="*", default=[], help="key=value CVAE settings")
    parser.add_argument("--out", help="markdown file to append the table to")
    args = parser.parse_args()
    overrides = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.set)}
    config = Config(
        model="CVAE",
        dataset=args.dataset,
        config_dict=dict(
            BENCH_SETTINGS, protocol="fixed", fixed_split=args.split, state="WARNING", **overrides
        ),
    )
    _, loaders, model, trainer = prepare(config)
    trainer.pretrain(loaders[0])
    model.after_pretraining()
    train, valid, test = split_matrices(*loaders)
    seen = (train + valid).tocsr()
    users = np.flatnonzero(test.getnnz(axis=1) > 0)

    content = model.content_matrix
    tfidf = sp.csr_matrix(tfidf_rows(content))  # ContentKNN's weighting, unit rows
    lsa = TruncatedSVD(model.k, random_state=config["seed"]).fit_transform(tfidf)
    mu = model.theta.numpy().copy()
    lsa_theta = lsa * np.linalg.norm(mu, axis=1).mean() / np.linalg.norm(lsa, axis=1).mean()
    rows = {
        "tfidf cosine": profile_cosine(train, tfidf),
        f"lsa-{model.k} cosine": profile_cosine(train, lsa),
        "VAE mu cosine": profile_cosine(train, mu),
        "CVAE first ALS sweep, theta = mu": als_scores(model, mu),
        **{
            f"CVAE first ALS sweep, theta = lsa-{model.k} at {c} x mu's norm": als_scores(
                model, c * lsa_theta
            )
            for c in (0.3, 1, 3)
        },
    }
    active = int((mu.std(0) > 0.1).sum())
    command = "python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/content_latents.py"] + sys.argv[1:]
    )
    settings = (
        " ".join(s for s in args.set if not s.startswith("checkpoint_dir=")) or "benchmark settings"
    )
    lines = [
        f"\n### {args.dataset} · fixed {args.split} · {settings}\n",
        f"    {command}\n",
        f"mu: {active} of {model.k} dimensions active (std over items > 0.1)\n",
        "| scores | " + " | ".join(f"recall@{m}" for m in CUTOFFS) + " |",
        "|---" * (len(CUTOFFS) + 1) + "|",
    ]
    for name, score in rows.items():
        result = recall_at(score, users, seen, test)
        lines.append(f"| {name} | " + " | ".join(f"{result[m]:.4f}" for m in CUTOFFS) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
