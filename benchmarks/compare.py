"""Paired comparisons over split draws: what "beats" means on the results page and in README.

For a model and a baseline run on the same draws of one (dataset, protocol, split), the
per-draw differences of the protocol's metric give a mean and its 95 % interval
(Student's t over the draws). Verdict: "beats" when the interval lies wholly on the better
side of 0, "loses to" when wholly on the worse side, "ties" otherwise. Fewer than two common
draws give no interval; fewer than ``MIN_DRAWS`` give the interval but no verdict, and a
baseline with fewer is never the bar of the headline table.

Draws are what a record's runs differ in: ``split_seeds`` (benchmarks/run.py --split-seeds),
``fixed_seeds`` (the random P-split files), or ``seeds`` where the protocol's split follows
RecBole's seed (recbole, loo99, rating...). ``seeds`` on strong / cold / in-matrix changed the
model's initialisation only (their split_seed was fixed): not draws, no verdict.
"""

import math

from recbole.evaluator.register import smaller_metrics  # RecBole's lower-is-better metrics
from scipy import stats

PAPER_MODELS = ("CVAE", "MDCVAE", "MDsymCVAE", "DualNet", "DEAMER", "LRMM")
# the metric each protocol's verdicts are read on (the papers' headline metric)
VERDICT_METRIC = {
    "strong": "trecall@20",
    "recbole": "recall@20",
    "cold": "recall@300",
    "fixed": "recall@300",
    "in-matrix": "recall@300",
    "loo99": "hit@10",
    "loo99-time": "hit@10",
    "rating": "rmse",
    "loo-rating": "rmse",
}
SPLIT_SEED_PROTOCOLS = ("strong", "cold", "in-matrix")  # split drawn from split_seed, not from seed
MIN_DRAWS = 5  # common draws a verdict needs


def lower_is_better(metric):
    return metric.split("@")[0] in smaller_metrics


def draw_seeds(record):
    """The split draws a record ran on ([] when its split was fixed)."""
    seeds = record.get("split_seeds") or record.get("fixed_seeds")
    if not seeds and record["protocol"] not in SPLIT_SEED_PROTOCOLS:
        seeds = record.get("seeds")
    return seeds or []


def draws(record, metric):
    """{draw: value of ``metric``} of a record run on several split draws, else {}."""
    return {
        d: run[metric]
        for d, run in zip(draw_seeds(record), record.get("per_seed") or [])
        if metric in run
    }


def paired_interval(diffs, level=0.95):
    """(mean, low, high) of the mean of ``diffs`` with its two-sided t interval."""
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def verdict(low, high, metric, n=MIN_DRAWS):
    """ "beats" / "loses to" / "ties" for an interval of (model - baseline) on ``metric`` over
    ``n`` draws; no verdict under MIN_DRAWS draws."""
    if n < MIN_DRAWS:
        return f"{n} draws: no verdict"
    better_low, better_high = (-high, -low) if lower_is_better(metric) else (low, high)
    if better_low > 0:
        return "beats"
    if better_high < 0:
        return "loses to"
    return "ties"


def compare(model_record, baseline_record, metric):
    """The paired comparison of two records on their common draws, or None (< 2 common)."""
    ours, theirs = draws(model_record, metric), draws(baseline_record, metric)
    common = [d for d in ours if d in theirs]
    if len(common) < 2:
        return None
    diffs = [ours[d] - theirs[d] for d in common]
    mean, low, high = paired_interval(diffs)
    sign = -1 if lower_is_better(metric) else 1
    return {
        "model": model_record,
        "baseline": baseline_record,
        "metric": metric,
        "draws": common,
        "mean": mean,
        "low": low,
        "high": high,
        "better_on": sum(sign * d > 0 for d in diffs),
        "verdict": verdict(low, high, metric, len(common)),
    }


def is_default(record):
    return not record.get("variant")


def baselines_of(rows, test_rows=()):
    """The baselines (default settings) of one split; a split without any of its own (LRMM's
    missing-modality conditions, which a baseline scores as the test split) takes split test's."""
    own = [r for r in rows if r["model"] not in PAPER_MODELS and is_default(r)]
    return own or [r for r in test_rows if r["model"] not in PAPER_MODELS and is_default(r)]


def comparisons(protocol, rows, test_rows=()):
    """Every paper model against every baseline of one table (``baselines_of``)."""
    metric = VERDICT_METRIC.get(protocol)
    models = [r for r in rows if r["model"] in PAPER_MODELS and is_default(r)]
    baselines = baselines_of(rows, test_rows)
    found = (compare(m, b, metric) for m in models for b in baselines) if metric else ()
    return [c for c in found if c]


def tuned(record):
    return bool(record.get("tuning"))


def comparison_lines(protocol, rows, test_rows=()):
    """Markdown: the table of paired comparisons of one (dataset, protocol, split), or []."""
    found = comparisons(protocol, rows, test_rows)
    if not found:
        return []
    metric = found[0]["metric"]
    lines = [
        "",
        f"Paired over split draws ({metric}, {'lower' if lower_is_better(metric) else 'higher'} is "
        "better; model − baseline, mean and 95 % interval over the common draws):",
        "",
        "| model | baseline | baseline tuned | draws | mean | 95 % interval "
        "| better on | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in found:
        lines.append(
            f"| {c['model']['model']} | {c['baseline']['model']} "
            f"| {'yes' if tuned(c['baseline']) else 'no'} "
            f"| {len(c['draws'])} | {c['mean']:+.4f} | [{c['low']:+.4f}, {c['high']:+.4f}] "
            f"| {c['better_on']} of {len(c['draws'])} | {c['verdict']} |"
        )
    return lines


def mean_interval(values, level=0.95):
    """(mean, half width of its t interval) of one model's per-draw values."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)


def best_tuned_baseline(protocol, rows, metric, test_rows=()):
    """The tuned baseline (``baselines_of``) with the best mean over its draws (≥ MIN_DRAWS), or
    None."""
    sign = -1 if lower_is_better(metric) else 1
    candidates = [
        r for r in baselines_of(rows, test_rows) if tuned(r) and len(draws(r, metric)) >= MIN_DRAWS
    ]
    return max(
        candidates,
        key=lambda r: sign * sum(draws(r, metric).values()) / len(draws(r, metric)),
        default=None,
    )


def estimate(record, metric):
    values = list(draws(record, metric).values())
    mean, half = mean_interval(values)
    return f"{mean:.4f} ± {half:.4f} ({len(values)})"


def headline_lines(sections, papers, keep=None):
    """The headline table: each paper model run on several draws, its paper figure, ours
    (mean ± 95 % half width, draws), the best tuned baseline of the same table and the verdict;
    ``keep(dataset, protocol, split)``: the splits shown (default all)."""
    lines = [
        "| dataset · protocol | model | metric | paper | ours | best tuned baseline | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for (dataset, protocol), splits in sections.items():
        metric = VERDICT_METRIC.get(protocol)
        for split, rows in splits.items():
            if keep and not keep(dataset, protocol, split):
                continue
            paper = papers.get((dataset, protocol, split), {}).get("models", {})
            baseline = (
                best_tuned_baseline(protocol, rows, metric, splits.get("test", []))
                if metric
                else None
            )
            for r in rows:
                if r["model"] not in PAPER_MODELS or not is_default(r) or len(draws(r, metric)) < 2:
                    continue
                figure = paper.get(r["model"], {}).get(metric)
                found = compare(r, baseline, metric) if baseline else None
                verdict = (
                    (found["verdict"] + ("" if tuned(r) else " (model untuned)"))
                    if found
                    else f"no tuned baseline on {MIN_DRAWS} draws yet"
                )
                where = f"{dataset} · {protocol}" + ("" if split == "test" else f" · {split}")
                lines.append(
                    f"| {where} | {r['model']} | {metric} | {'' if figure is None else figure} | "
                    f"{estimate(r, metric)} | "
                    + (f"{baseline['model']} {estimate(baseline, metric)}" if baseline else "–")
                    + f" | {verdict} |"
                )
    return lines
