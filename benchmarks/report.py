"""Results page: benchmarks/results/*.json -> results/README.md (+ results/*.png).

    python benchmarks/report.py [--results benchmarks/results] [--out results] [--papers benchmarks/paper_figures.yaml]

Per dataset and protocol, one table per test split: every model run there (ours and RecBole's),
the paper's figure beside ours (paper_figures.yaml), seconds per epoch and peak memory, then each
multi-seed model against the protocol's bar seed by seed (PAIRED). A
record present in several results files is shown once (the newest). PNG plots, with
matplotlib (pip install ".[plot]"; without it the page says so and has none):
- recall@M curves (protocols fixed and in-matrix), as the CVAE paper's Figs. 4-5;
- normal vs cold items (protocol cold);
- missing modalities: test splits named after LRMM's conditions (+F, -U, -O, -M, -V);
- lambda_v sweeps: records whose variant is 'lambda_v=<value>', one line per split (MD-CVAE's
  Fig. 6: run.py --models MDsymCVAE --protocols cold --set lambda_v=10 --variant lambda_v=10).
"""
import argparse
import importlib.util
import json
import os
import re
from functools import partial
from pathlib import Path

import yaml
from recbole.evaluator.register import smaller_metrics  # RecBole's lower-is-better metrics (rmse, mae...)
from run import key

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OURS = {p.stem for p in (REPO / "properties" / "model").glob("*.yaml")}
PROTOCOL_ORDER = ["recbole", "strong", "fixed", "in-matrix", "cold", "loo99", "loo99-time", "loo-rating", "rating"]
SPLIT_ORDER = ["test", "normal", "cold"]
CURVE_PROTOCOLS = ("fixed", "in-matrix")
COLD_METRICS = ["trecall@20", "recall@20", "recall@50", "ndcg@100"]
MISSING_METRICS = ["rmse", "mae", "hit@10", "ndcg@10", "recall@20"]
SWEEP_METRICS = ["trecall@20", "recall@20", "ndcg@100", "rmse", "hit@10"]
# Per protocol, the bar every multi-seed model is compared with, seed by seed on the seeds both ran:
# the bias model for ratings, the content-only baseline for rankings.
PAIRED = {"rating": ("BiasMF", "rmse"), "loo-rating": ("BiasMF", "rmse"), "fixed": ("ContentKNN", "recall@300"),
          "cold": ("ContentKNN", "recall@300"), "loo99": ("ContentKNN", "hit@10"), "loo99-time": ("ContentKNN", "hit@10")}
MODALITY_SPLIT = re.compile(r"[+-][A-Z]")
LAMBDA_VARIANT = re.compile(r"lambda_v=([-+0-9.eE]+)")
NO_PLOTS = "Plots: matplotlib is not installed (`pip install \".[plot]\"`), so this page has none."


# ---- loading ----

def load_records(results_dir):
    """Every record of ``results_dir/*.json`` with its ``source`` (file stem); a key in several
    files keeps its newest record (then the one with more metrics)."""
    chosen = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        for record in json.loads(path.read_text()):
            record = dict(record, source=path.stem)
            rank = (record.get("date", ""), len(record["metrics"]))
            if key(record) not in chosen or rank > chosen[key(record)][0]:
                chosen[key(record)] = (rank, record)
    return [record for _, record in chosen.values()]


def load_papers(path):
    """(columns per protocol, {(dataset, protocol, split): {'models': {name: metrics}, 'tables': [entry]}})."""
    data = yaml.safe_load(Path(path).read_text()) if path and Path(path).is_file() else {}
    figures = {}
    for entry in data.get("figures", []):
        group = figures.setdefault((entry["dataset"], entry["protocol"], str(entry["split"])), {"models": {}, "tables": []})
        for model, metrics in entry["models"].items():
            group["models"].setdefault(model, {}).update(metrics)
        group["tables"].append(entry)
    return data.get("columns", {}), figures


# ---- grouping ----

def display_name(record):
    return record["model"] + (f" ({record['variant']})" if record.get("variant") else "")


def sections(records):
    """{(dataset, protocol): {split: rows}}, in page order."""
    found = {}
    for r in sorted(records, key=display_name):
        found.setdefault((r["dataset"], r["protocol"]), {}).setdefault(r["split"], []).append(r)
    protocol_rank = {p: i for i, p in enumerate(PROTOCOL_ORDER)}
    split_rank = {s: i for i, s in enumerate(SPLIT_ORDER)}
    ordered = sorted(found, key=lambda dp: (dp[0], protocol_rank.get(dp[1], len(PROTOCOL_ORDER)), dp[1]))
    return {dp: {s: found[dp][s] for s in sorted(found[dp], key=lambda s: (split_rank.get(s, len(SPLIT_ORDER)), s))}
            for dp in ordered}


def pick_metric(rows, preferred):
    """The preferred metric most rows have (the earliest on ties), or None."""
    counts = {m: sum(m in r["metrics"] for r in rows) for m in preferred}
    best = max(preferred, key=counts.get)
    return best if counts[best] else None


def table_metrics(rows, protocol, columns, paper_models):
    """The protocol's columns that some row (or paper figure) has; else the rows' first metrics."""
    present = {m for r in rows for m in r["metrics"]} | {m for fig in paper_models.values() for m in fig}
    wanted = [m for m in columns.get(protocol, []) if m in present]
    return wanted or list(dict.fromkeys(m for r in rows for m in r["metrics"]))[:6]


# ---- tables ----

def cell(record, paper, metric):
    ours = ""
    if record and metric in record["metrics"]:
        ours = f"{record['metrics'][metric]:.4f}" + (f" ± {record['std'][metric]:.4f}" if "std" in record else "")
    if metric in paper:
        ours = f"{ours or '–'} (paper {paper_value(paper[metric])})"
    return ours


def paper_value(value):
    """As the papers print them: 3 decimals, 4 where the paper has them."""
    return f"{value:.3f}" if round(value, 3) == value else f"{value:.4f}"


def table(rows, metrics, paper_models, link):
    """Markdown lines: one row per record, then the paper's models that have no record here."""
    lines = ["| model | from | " + " | ".join(metrics) + " | s/epoch | peak MB | source |",
             "|---" * (len(metrics) + 5) + "|"]
    for r in rows:
        paper = paper_models.get(display_name(r), {})
        lines.append(f"| {display_name(r)} | {'ours' if r['model'] in OURS else 'RecBole'} | "
                     + " | ".join(cell(r, paper, m) for m in metrics)
                     + f" | {r['epoch_seconds']} | {r['peak_mem_mb']:.0f} | [{r['source']}]({link(r['source'])}) |")
    for name in sorted(set(paper_models) - {display_name(r) for r in rows}):
        lines.append(f"| {name} *(not run)* | | " + " | ".join(cell(None, paper_models[name], m) for m in metrics)
                     + " | | | |")
    return lines


def notes(rows, tables):
    found = [f"- {display_name(r)}: {r['note']}" for r in rows if r.get("note")]
    found += [f"- paper: {t['paper']}, {t['table']} (`../shared/papers/{t['file']}`)"
              + (f"; {t['note']}" if t.get("note") else "") for t in tables]
    return ([""] + list(dict.fromkeys(found))) if found else []


def by_seed(record, metric):
    """{seed: value} of a multi-seed record ({} without per-seed figures for ``metric``)."""
    seeds = record.get("seeds") or record.get("fixed_seeds") or []
    return {seed: run[metric] for seed, run in zip(seeds, record.get("per_seed") or []) if metric in run}


def paired(protocol, rows, test_rows):
    """Markdown lines: each multi-seed row minus the protocol's reference (PAIRED), seed by seed, on
    the seeds both ran; the reference is looked up in this split, then in split ``test`` (a model
    scored under LRMM's missing-modality conditions against one that uses no modality)."""
    if protocol not in PAIRED:
        return []
    name, metric = PAIRED[protocol]
    ref, ref_values = next(((r, v) for r in rows + test_rows if display_name(r) == name
                            and (v := by_seed(r, metric))), (None, None))
    if ref is None:
        return []
    sign = -1 if metric.split("@")[0] in smaller_metrics else 1
    lines = []
    for r in rows:
        values = by_seed(r, metric)
        seeds = [seed for seed in values if seed in ref_values]
        if r is ref or len(seeds) < 2:
            continue
        diffs = [values[seed] - ref_values[seed] for seed in seeds]
        better = sum(sign * d > 0 for d in diffs)
        lines.append(f"- {display_name(r)} − {name}, {metric}, seeds {seeds}: "
                     + ", ".join(f"{d:+.4f}" for d in diffs)
                     + f" (mean {sum(diffs) / len(diffs):+.4f}; better on {better} of {len(diffs)})")
    return ["", f"Paired with {name} ({metric}, {'lower' if sign < 0 else 'higher'} is better):", ""] + lines if lines else []


# ---- plots (specs without matplotlib; render() draws them) ----

def slug(*parts):
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", "_".join(parts)).strip("_")


def points(metrics, family):
    """[(M, value)] of ``family@M`` metrics, by M."""
    return sorted((int(k.split("@")[1]), v) for k, v in metrics.items() if k.split("@")[0] == family and "@" in k)


def recall_curves(dataset, protocol, split, rows, paper_models):
    if protocol not in CURVE_PROTOCOLS:
        return None
    series = {display_name(r): points(r["metrics"], "recall") for r in rows}
    series = {name: pts for name, pts in series.items() if len(pts) >= 3}
    paper = {name: points(fig, "recall") for name, fig in paper_models.items() if points(fig, "recall")}
    if not series:
        return None
    return {"kind": "lines", "file": slug(dataset, protocol, split, "recall") + ".png",
            "title": f"{dataset} · {protocol} · {split}: recall@M", "xlabel": "M", "ylabel": "recall@M",
            "series": series, "paper": paper}


def bars(title, file, ylabel, categories, rows_by_series, metric, paper=None):
    series = {label: [rows.get(c, {}).get(metric) for c in categories] for label, rows in rows_by_series.items()}
    paper = {label: [figs.get(c, {}).get(metric) for c in categories] for label, figs in (paper or {}).items()}
    return {"kind": "bars", "file": file, "title": title, "xlabel": "", "ylabel": ylabel,
            "categories": categories, "series": series, "paper": paper}


def metrics_by_name(rows):
    """{display name: metrics}, without the points of a lambda_v sweep (plotted on their own)."""
    return {display_name(r): r["metrics"] for r in rows if not LAMBDA_VARIANT.fullmatch(str(r.get("variant", "")))}


def cold_bars(dataset, protocol, splits, papers):
    if not {"normal", "cold"} <= set(splits):
        return None
    rows = splits["normal"] + splits["cold"]
    metric = pick_metric(rows, COLD_METRICS)
    both = metrics_by_name(splits["normal"]).keys() & metrics_by_name(splits["cold"]).keys()
    categories = [n for n in metrics_by_name(splits["normal"]) if n in both]
    if not metric or not categories:
        return None
    paper = {s: papers.get((dataset, protocol, s), {}).get("models", {}) for s in ("normal", "cold")}
    return bars(f"{dataset} · {protocol}: normal vs cold items", slug(dataset, protocol, "normal-cold") + ".png",
                metric, categories, {s: metrics_by_name(splits[s]) for s in ("normal", "cold")}, metric, paper)


def missing_modality_bars(dataset, protocol, splits):
    conditions = [s for s in splits if MODALITY_SPLIT.fullmatch(s)]
    if len(conditions) < 2:
        return None
    rows = [r for s in conditions for r in splits[s]]
    metric = pick_metric(rows, MISSING_METRICS)
    models = list(dict.fromkeys(display_name(r) for r in rows))
    by_model = {m: {s: r["metrics"] for s in conditions for r in splits[s] if display_name(r) == m} for m in models}
    spec = bars(f"{dataset} · {protocol}: missing modalities", slug(dataset, protocol, "missing") + ".png",
                metric, conditions, by_model, metric)
    return dict(spec, zoom=True)


def lambda_sweep(dataset, protocol, splits):
    swept = [(s, r, float(m.group(1))) for s, rows in splits.items() for r in rows
             if (m := LAMBDA_VARIANT.fullmatch(str(r.get("variant", ""))))]
    if len({value for _, _, value in swept}) < 2:
        return None
    metric = pick_metric([r for _, r, _ in swept], SWEEP_METRICS)
    series = {}
    for split, r, value in swept:
        if metric in r["metrics"]:
            series.setdefault(f"{r['model']} · {split}", []).append((value, r["metrics"][metric]))
    return {"kind": "lines", "file": slug(dataset, protocol, "lambda_v") + ".png",
            "title": f"{dataset} · {protocol}: {metric} vs lambda_v", "xlabel": "lambda_v", "ylabel": metric,
            "series": {k: sorted(v) for k, v in series.items()}, "paper": {}, "logx": True}


def section_plots(dataset, protocol, splits, papers):
    specs = [recall_curves(dataset, protocol, s, rows, papers.get((dataset, protocol, s), {}).get("models", {}))
             for s, rows in splits.items()]
    specs += [cold_bars(dataset, protocol, splits, papers), missing_modality_bars(dataset, protocol, splits),
              lambda_sweep(dataset, protocol, splits)]
    return [s for s in specs if s]


def matplotlib_available():
    return importlib.util.find_spec("matplotlib") is not None


def draw_lines(ax, spec):
    colors = {}
    for label, pts in spec["series"].items():
        (line,) = ax.plot(*zip(*pts), marker="o", markersize=3, label=label)
        colors[label] = line.get_color()
    for label, pts in spec["paper"].items():
        ax.plot(*zip(*pts), linestyle="none", marker="x", markersize=8, color=colors.get(label, "black"),
                label=f"{label} (paper)")
    if spec.get("logx"):
        ax.set_xscale("log")


def draw_bars(ax, spec):
    n, width = len(spec["categories"]), 0.8 / max(len(spec["series"]), 1)
    paper_label = "paper"
    for i, (label, values) in enumerate(spec["series"].items()):
        xs = [c + (i - (len(spec["series"]) - 1) / 2) * width for c in range(n)]
        ax.bar(xs, [v if v is not None else 0 for v in values], width, label=label)
        paper = [(x, v) for x, v in zip(xs, spec["paper"].get(label, [])) if v is not None]
        if paper:
            ax.plot(*zip(*paper), linestyle="none", marker="x", markersize=8, color="black", label=paper_label)
            paper_label = None  # one legend entry
    ax.set_xticks(range(n), spec["categories"], rotation=20, ha="right", fontsize=8)
    values = [v for vs in spec["series"].values() for v in vs if v is not None]
    if spec.get("zoom") and values:
        ax.set_ylim(bottom=0.95 * min(values), top=1.02 * max(values))  # errors (rmse) differ by a few %


def render(spec, out_dir):
    """One PNG for ``spec`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    {"lines": draw_lines, "bars": draw_bars}[spec["kind"]](ax, spec)
    ax.set(title=spec["title"], xlabel=spec["xlabel"], ylabel=spec["ylabel"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(out_dir) / spec["file"], dpi=100, metadata={"Software": None})
    plt.close(fig)


# ---- page ----

def header(records, results_dir, out_dir, plots):
    links = ", ".join(f"[{s}]({source_link(s, results_dir, out_dir)})" for s in sorted({r["source"] for r in records}))
    datasets = sorted({r["dataset"] for r in records})
    legend = ("Test-set metrics (RecBole's names); epochs and hyperparameters chosen on validation; "
              "mean ± std where a record has several seeds. *(paper x)*: the paper's figure "
              "(`benchmarks/paper_figures.yaml`); *from*: this package's model or RecBole's; s/epoch and "
              "peak MB as recorded by `benchmarks/run.py`; *Paired with*: a multi-seed model minus the "
              "protocol's bar (BiasMF for ratings, ContentKNN for rankings), seed by seed. Every metric "
              f"and the commands that produced them: {links}.")
    return (["# Results", "",
             "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`: do not edit by hand.",
             legend, ""] + ([] if plots else [NO_PLOTS, ""])
            + ["Datasets: " + " · ".join(f"[{d}](#{d})" for d in datasets)])


def source_link(source, results_dir, out_dir):
    """Relative link from the page to ``<results_dir>/<source>.md``."""
    return os.path.relpath(Path(results_dir) / f"{source}.md", out_dir).replace(os.sep, "/")


def build_page(records, columns, papers, results_dir, out_dir, plots=True):
    """(markdown of the page, plot specs it links)."""
    lines, specs, dataset = header(records, results_dir, out_dir, plots), [], None
    link = partial(source_link, results_dir=results_dir, out_dir=out_dir)
    for (d, protocol), splits in sections(records).items():
        if d != dataset:
            lines += ["", f"## {d}"]
            dataset = d
        lines += ["", f"### {d} · {protocol}"]
        for split, rows in splits.items():
            paper = papers.get((d, protocol, split), {"models": {}, "tables": []})
            metrics = table_metrics(rows, protocol, columns, paper["models"])
            lines += (["", f"**{split}**", ""] + table(rows, metrics, paper["models"], link) + notes(rows, paper["tables"])
                      + paired(protocol, rows, splits.get("test", [])))
        if plots:
            section = section_plots(d, protocol, splits, papers)
            lines += [f"\n![{s['title']}]({s['file']})" for s in section]
            specs += section
    return "\n".join(lines) + "\n", specs


def write_report(results_dir, out_dir, papers_file):
    """Write ``out_dir/README.md`` and its PNGs (when matplotlib is installed); returns the page path."""
    records = load_records(results_dir)
    columns, papers = load_papers(papers_file)
    plots = matplotlib_available()
    text, specs = build_page(records, columns, papers, results_dir, out_dir, plots)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for spec in specs:
        render(spec, out_dir)
    page = Path(out_dir) / "README.md"
    page.write_text(text)
    return page


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=str(HERE / "results"), help="directory of the *.json results")
    parser.add_argument("--out", default=str(REPO / "results"), help="where README.md and the PNGs go")
    parser.add_argument("--papers", default=str(HERE / "paper_figures.yaml"), help="the papers' figures")
    args = parser.parse_args()
    print(write_report(Path(args.results), Path(args.out), Path(args.papers)))


if __name__ == "__main__":
    main()
