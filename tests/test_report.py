"""Results page (issue 10, part 4): benchmarks/report.py on a small results dir and on the
committed results (tables with every model and the papers' figures; plots with matplotlib)."""

import json
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import compare  # noqa: E402
import stale  # noqa: E402
import report  # noqa: E402
import reproduce  # noqa: E402

RESULTS, PAPERS, PAGE_DIR = (
    REPO / "benchmarks" / "results",
    REPO / "benchmarks" / "paper_figures.yaml",
    REPO / "results",
)


def record(model, protocol, split, metrics, variant=None, **extra):
    return dict(
        {
            "model": model,
            "dataset": "toy",
            "protocol": protocol,
            "split": split,
            "metrics": metrics,
            "epoch_seconds": 1.5,
            "peak_mem_mb": 900.4,
            "date": "2026-01-01",
            "command": "python run.py",
        },
        **({"variant": variant} if variant else {}),
        **extra,
    )


def cold(model, normal, cold_value, variant=None):
    return [
        record(model, "cold", "normal", {"trecall@20": normal, "ndcg@100": normal}, variant),
        record(model, "cold", "cold", {"trecall@20": cold_value, "ndcg@100": cold_value}, variant),
    ]


@pytest.fixture
def small(tmp_path):
    """Two results files (one key in both), a papers file; returns (results dir, papers file)."""
    results = tmp_path / "results"
    results.mkdir()
    curve = {"recall@20": 0.1, "recall@50": 0.2, "recall@100": 0.3}
    first = [
        record(
            "MDCVAE",
            "strong",
            "test",
            {"trecall@20": 0.3123, "trecall@40": 0.4, "ndcg@100": 0.3},
            build_seconds=12.4,
            fit_seconds=100.2,
        ),
        record("MultiVAE", "strong", "test", {"trecall@20": 0.1111, "ndcg@100": 0.1}),
        record("DualNet", "fixed", "P=10", curve),
        record("BPR", "fixed", "P=10", curve),
        *cold("MDsymCVAE", 0.25, 0.2),
        *cold("CVAE", 0.23, 0.22),
        *cold("MDsymCVAE", 0.2, 0.1, "lambda_v=1"),
        *cold("MDsymCVAE", 0.15, 0.3, "lambda_v=10"),
        *[
            record("LRMM", "rating", s, {"rmse": v, "mae": v - 0.2})
            for s, v in (("+F", 0.9), ("-U", 0.95), ("-O", 0.97))
        ],
    ]
    second = [
        record(
            "MultiVAE",
            "strong",
            "test",
            {"trecall@20": 0.2222, "ndcg@100": 0.2},
            date="2026-02-01",
            std={"trecall@20": 0.01, "ndcg@100": 0.02},
            note="three seeds",
        )
    ]
    (results / "first.json").write_text(json.dumps(first))
    (results / "second.json").write_text(json.dumps(second))
    papers = tmp_path / "papers.yaml"
    papers.write_text(
        yaml.safe_dump(
            {
                "columns": {"strong": ["trecall@20", "ndcg@100"]},
                "figures": [
                    {
                        "paper": "P",
                        "file": "P.md",
                        "table": "Table 2",
                        "dataset": "toy",
                        "protocol": "strong",
                        "split": "test",
                        "models": {"MDCVAE": {"trecall@20": 0.303}, "CVAE": {"trecall@20": 0.236}},
                    },
                    {
                        "paper": "P",
                        "file": "P.md",
                        "table": "Table 3",
                        "dataset": "toy",
                        "protocol": "cold",
                        "split": "normal",
                        "note": "lambda_v = 50",
                        "models": {"MDsymCVAE": {"trecall@20": 0.29}},
                    },
                ],
            }
        )
    )
    return results, papers


def row(page, name):
    return next(line for line in page.splitlines() if line.startswith(f"| {name} |"))


def test_tables_models_paper_figures_without_matplotlib(small, tmp_path, monkeypatch):
    results, papers = small
    monkeypatch.setattr(report, "matplotlib_available", lambda: False)
    page = report.write_report(results, tmp_path / "out", papers).read_text()
    assert (
        report.NO_PLOTS in page and "![" not in page and not list((tmp_path / "out").glob("*.png"))
    )
    for name in (
        "MDCVAE",
        "MultiVAE",
        "DualNet",
        "BPR",
        "CVAE",
        "MDsymCVAE",
        "MDsymCVAE (lambda_v=1)",
        "LRMM",
    ):
        assert row(page, name)
    assert row(page, "MDCVAE") == (
        "| MDCVAE | ours | 0.3123 (paper 0.303) | 0.3000 | 1.5 | 113 | 900 | unverified · 1 draw | "
        "[first](../results/first.md) |"
    )  # strong: the yaml's columns only
    assert (
        "0.2222 ± 0.0100" in row(page, "MultiVAE") and "0.1111" not in page
    )  # the newest record of a key
    assert "| RecBole |" in row(page, "MultiVAE") and "- MultiVAE: three seeds" in page
    assert "| 1.5 | – | 900 |" in row(page, "MultiVAE")  # made before records kept fit_seconds
    assert "(paper 0.236)" in row(page, "CVAE *(not run)*")
    assert "0.2500 (paper 0.290)" in row(page, "MDsymCVAE")
    assert "- paper: P, Table 3 (`../shared/papers/P.md`); lambda_v = 50" in page


def test_plot_specs(small):
    _, papers = report.load_papers(small[1])
    sections = report.sections(report.load_records(small[0]))
    specs = {
        s["file"]: s
        for (d, p), splits in sections.items()
        for s in report.section_plots(d, p, splits, papers)
    }
    assert sorted(specs) == [
        "toy_cold_lambda_v.png",
        "toy_cold_normal-cold.png",
        "toy_fixed_P_10_recall.png",
        "toy_rating_missing.png",
    ]
    assert specs["toy_fixed_P_10_recall.png"]["series"]["BPR"] == [(20, 0.1), (50, 0.2), (100, 0.3)]
    assert specs["toy_cold_lambda_v.png"]["series"] == {
        "MDsymCVAE · normal": [(1.0, 0.2), (10.0, 0.15)],
        "MDsymCVAE · cold": [(1.0, 0.1), (10.0, 0.3)],
    }
    bars = specs["toy_cold_normal-cold.png"]
    assert bars["categories"] == ["CVAE", "MDsymCVAE"] and bars["series"]["cold"] == [0.22, 0.2]
    assert bars["paper"]["normal"] == [None, 0.29]
    missing = specs["toy_rating_missing.png"]
    assert missing["categories"] == ["+F", "-O", "-U"] and missing["series"]["LRMM"] == [
        0.9,
        0.97,
        0.95,
    ]


def test_plots_with_matplotlib(small, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    page = report.write_report(small[0], out, small[1]).read_text()
    assert report.NO_PLOTS not in page
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 4 and all(f"]({name})" in page for name in pngs)
    assert all((out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in pngs)


def test_committed_results_every_model_and_paper_figure():
    records = report.load_records(RESULTS)
    columns, papers = report.load_papers(PAPERS)
    page, specs = report.build_page(records, columns, papers, RESULTS, PAGE_DIR, plots=True)
    sections = page.split("\n### ")
    for r in records:
        section = next(s for s in sections if s.startswith(f"{r['dataset']} · {r['protocol']}\n"))
        split = section.split(f"**{r['split']}**\n")[1].split("\n**")[0]  # to the next split
        assert row(split, report.display_name(r)), r
    shown = 0
    for (dataset, protocol, split), group in papers.items():
        names = {
            report.display_name(r)
            for r in records
            if (r["dataset"], r["protocol"], r["split"]) == (dataset, protocol, split)
        }
        metrics = {
            m
            for r in records
            if (r["dataset"], r["protocol"], r["split"]) == (dataset, protocol, split)
            for m in r["metrics"]
        }
        for model, figures in group["models"].items():
            assert set(figures) <= metrics, (
                f"paper_figures.yaml: {dataset}/{protocol}/{split} {model}: no such metric here"
            )
            section = next(s for s in sections if s.startswith(f"{dataset} · {protocol}\n"))
            text = row(
                section.split(f"**{split}**\n")[1],
                model if model in names else f"{model} *(not run)*",
            )
            for metric, value in figures.items():
                assert f"(paper {report.paper_value(value)})" in text, (model, metric)
                shown += 1
    assert shown >= 30 and len(specs) >= 10


def test_committed_page_is_current():
    records = report.load_records(RESULTS, report.load_checks("headline"))
    page, specs = report.build_page(
        records, *report.load_papers(PAPERS), RESULTS, PAGE_DIR, plots=True
    )
    assert (PAGE_DIR / "README.md").read_text() == page, (
        "results/README.md is stale: python benchmarks/report.py"
    )
    assert all((PAGE_DIR / s["file"]).is_file() for s in specs)


def test_paired_interval_by_hand():
    # diffs .01 .03 .02: mean .02, sd .01, t(.975, 2) = 4.302653 -> half width .024841
    mean, low, high = compare.paired_interval([0.01, 0.03, 0.02])
    assert (mean, low, high) == pytest.approx((0.02, 0.02 - 0.024841, 0.02 + 0.024841), abs=1e-6)
    assert compare.verdict(low, high, "recall@20") == "ties"
    # five draws, sd .005, t(.975, 4) = 2.776445 -> half width .006208
    _, low, high = compare.paired_interval([0.02, 0.03, 0.025, 0.02, 0.03])
    assert (low, high) == pytest.approx((0.018792, 0.031208), abs=1e-6)
    assert compare.verdict(low, high, "recall@20") == "beats"
    assert compare.verdict(low, high, "rmse") == "loses to"  # higher error is worse


def test_comparisons_on_common_split_draws_only():
    def ranked(model, values, **draws):
        return record(
            model,
            "strong",
            "test",
            {"trecall@20": 0},
            per_seed=[{"trecall@20": v} for v in values],
            **draws,
        )

    knn = ranked("ContentKNN", (0.20, 0.21, 0.22, 0.23, 0.24, 0.50), split_seeds=[0, 1, 2, 3, 4, 5])
    ease = ranked("EASE", (0.30, 0.31, 0.32), split_seeds=[0, 1, 2], tuning={"trials": 8})
    mdcvae = ranked("MDCVAE", (0.31, 0.32, 0.35, 0.30, 0.29), split_seeds=[2, 1, 0, 3, 4])
    model_seeds = ranked(
        "MDsymCVAE", (0.9, 0.9, 0.9), seeds=[0, 1, 2]
    )  # strong's split fixed: not draws
    found = {
        c["baseline"]["model"]: c
        for c in compare.comparisons("strong", [knn, ease, mdcvae, model_seeds])
    }
    assert set(found) == {"ContentKNN", "EASE"}
    assert found["ContentKNN"]["draws"] == [2, 1, 0, 3, 4]  # draw 5 only the baseline ran
    assert found["ContentKNN"]["better_on"] == 5 and found["ContentKNN"]["verdict"] == "beats"
    assert found["EASE"]["mean"] == pytest.approx((-0.01 + 0.01 + 0.05) / 3)  # draws 2, 1, 0
    # three common draws: the interval is shown, the verdict withheld (MIN_DRAWS = 5)
    assert found["EASE"]["verdict"] == "3 draws: no verdict"
    lines = compare.comparison_lines("strong", [knn, ease, mdcvae, model_seeds])
    assert "| MDCVAE | EASE | yes | 3 | +0.0167 |" in "\n".join(lines)
    bias = record(
        "BiasMF",
        "rating",
        "test",
        {"rmse": 0.85},
        per_seed=[{"rmse": r} for r in (0.87, 0.84, 0.83, 0.85, 0.86)],
        seeds=[0, 1, 2, 3, 4],
    )  # rating's split follows the seed: draws
    lrmm = record(
        "LRMM",
        "rating",
        "-U",
        {"rmse": 0.85},
        per_seed=[{"rmse": r} for r in (0.88, 0.83, 0.83, 0.86, 0.87)],
        seeds=[0, 1, 2, 3, 4],
    )
    (c,) = compare.comparisons("rating", [lrmm], [bias])  # baseline from split test
    assert c["better_on"] == 1 and c["verdict"] == "ties"


def test_stale_record_detected_and_given_no_verdict(monkeypatch):
    command = (
        "python benchmarks/run.py --models EASE --datasets ml-100k --protocols strong "
        "--out x.json --set reg_weight=300"
    )
    base = record("EASE", "strong", "test", {"trecall@20": 0.3}, command=command, dataset="ml-100k")
    spec = stale.first_spec(base)
    assert spec == {"reg_weight": 300, "protocol": "strong"}
    config = stale.resolved_config(
        stale.config_for({"model": "EASE", "dataset": "ml-100k", "config": spec})
    )
    assert stale.check(dict(base, config=config)) == (stale.CURRENT, None)
    assert stale.check(base)[0] == stale.UNVERIFIED  # no stored config
    # a default changed since the record was made: its command now runs another setting
    state, reason = stale.check(dict(base, config=dict(config, fold_in_ratio=0.5)))
    assert state == stale.STALE and "fold_in_ratio to 0.8 (recorded 0.5)" in reason
    assert (
        stale.check(dict(base, config=dict(config, pretrain_lr=0.1)))[0] == stale.STALE
    )  # a key since removed
    older = {k: v for k, v in config.items() if k != "content_missing_max_share"}
    assert (
        stale.check(dict(base, config=older))[0] == stale.CURRENT
    )  # a key added since: its default
    renamed = dict(base, command=command.replace("reg_weight", "reg_wieght"), config=config)
    assert stale.check(renamed) == (
        stale.STALE,
        "unknown configuration key [reg_wieght] in its command: did you mean [reg_weight]?",
    )
    draws = [{"trecall@20": v} for v in (0.3, 0.31, 0.32)]
    rows = [
        dict(base, model="MDCVAE", per_seed=draws, split_seeds=[0, 1, 2], state=(stale.STALE, "x")),
        dict(base, per_seed=draws, split_seeds=[0, 1, 2], state=(stale.CURRENT, None)),
    ]
    assert compare.comparisons("strong", rows) and not compare.comparisons(
        "strong", report.current(rows)
    )


def test_committed_readme_headline_is_current():
    records = report.load_records(RESULTS, report.load_checks("headline"))
    _, papers = report.load_papers(PAPERS)
    readme = (REPO / "README.md").read_text()
    assert report.readme_with_headline(readme, report.readme_headline(records, papers)) == readme, (
        "README.md's headline table is stale: python benchmarks/report.py"
    )
    assert report.readme_with_main_job(readme, report.load_main_job()) == readme, (
        "README.md's main job lines are stale: python benchmarks/report.py"
    )
    progress, checks = report.suite_progress("headline"), report.load_checks("headline")
    assert report.readme_with_suite(readme, progress, checks) == readme, (
        "README.md's suite and reproduction lines are stale: python benchmarks/report.py"
    )


def test_suite_line_gives_progress_then_the_total_time():
    partial_line = report.suite_lines((30, 91, 36000.0))[0]
    assert "30 of 91 steps done, 10.0 process-hours so far" in partial_line
    assert "about 5 h on a 2-core machine" in report.suite_lines((91, 91, 36000.0))[0]


def test_a_record_whose_draw_gave_other_numbers_again_is_stale_until_rerun():
    """A reproduction check that differs makes the record stale (no verdict) while the record
    still holds the draw's stored numbers; a rerun record (other numbers there) is not."""
    record = {
        "model": "EASE",
        "dataset": "citeulike-a",
        "protocol": "strong",
        "split": "test",
        "metrics": {"ndcg@100": 0.36},
        "per_seed": [{"ndcg@100": 0.3499}, {"ndcg@100": 0.37}],
        "per_seed_valid": [{"ndcg@100": 0.2}, {"ndcg@100": 0.2}],
    }
    check = {"process": "EASE citeulike-a strong", "draw": 0, "commit": "abc1234"}
    stored = {"tests": {"test": record["per_seed"][0]}, "valid_metrics": {"ndcg@100": 0.2}}
    rerun = {"tests": {"test": {"ndcg@100": 0.35}}, "valid_metrics": {"ndcg@100": 0.2}}
    check["differences"] = reproduce.differences(stored, rerun)  # the test split's only
    reason = stale.unreproduced(record, [check])
    assert "draw 0 gives other numbers at abc1234 (test ndcg@100 0.3499 -> 0.35" in reason
    rerun = dict(record, per_seed=[{"ndcg@100": 0.35}, {"ndcg@100": 0.37}])
    assert stale.unreproduced(rerun, [check]) is None
    assert stale.unreproduced(record, [dict(check, differences={})]) is None
    assert stale.unreproduced(dict(record, dataset="citeulike-t"), [check]) is None
    fixed = dict(record, protocol="fixed", split="P=1-random")
    assert stale.unreproduced(fixed, [dict(check, process="EASE citeulike-a fixed:P=1-random")])


def test_reproduction_line_counts_the_checks_that_differ():
    same = {"commit": "abc1234", "differences": {}}
    differs = {"commit": "abc1234", "differences": {"validation": {"ndcg@100": [0.1, 0.2]}}}
    failed = {"commit": "def5678", "error": "exit 1"}
    [line] = report.reproduce_lines([same, same, differs, failed])
    assert "draw 0 of 4 records run again from scratch at abc1234, def5678" in line
    assert "the stored numbers exactly for 2, other numbers for 2" in line
    assert report.reproduce_lines([]) == []


def test_main_job_lines_state_time_metrics_and_second_run():
    record = {
        "cores": 2,
        "load_before": [0.1, 0.2],
        "commit": "abc1234",
        "date": "2026-12-06",
        "seconds": 540.0,
        "second_run_seconds": 300.0,
        "valid": {"recall@20": 0.3251},
        "test": {"recall@20": 0.3262},
    }
    [line] = report.main_job_lines(record)
    assert "2 cores" in line and "9.0 min" in line and "5.0 min" in line
    assert "validation recall@20 0.3251" in line and "test recall@20 0.3262" in line
    assert "Not measured yet" in report.main_job_lines(None)[0]


def test_the_timed_command_is_the_readmes():
    from readme_main import MAIN_COMMAND

    assert f"&& {MAIN_COMMAND}\n" in (REPO / "README.md").read_text()


def test_headline_row_pairs_the_model_with_the_best_tuned_baseline():
    def ranked(model, values, **extra):
        return record(
            model,
            "strong",
            "test",
            {"trecall@20": 0},
            per_seed=[{"trecall@20": v} for v in values],
            split_seeds=list(range(len(values))),
            state=(stale.CURRENT, None),
            **extra,
        )

    rows = [
        ranked("MDCVAE", (0.30, 0.32, 0.31, 0.30, 0.32), tuning={"trials": 5}),
        ranked("EASE", (0.33, 0.35, 0.34, 0.33, 0.35), tuning={"trials": 8}),
        ranked("ContentKNN", (0.20, 0.21, 0.22, 0.20, 0.22), tuning={"trials": 8}),
        ranked("CEASE", (0.50, 0.51, 0.52), tuning={"trials": 8}),  # 3 draws: never the bar
        ranked("MultiVAE", (0.40, 0.41, 0.42, 0.40, 0.42)),  # untuned: never the bar
        ranked("DualNet", (0.30, 0.31, 0.32)),  # 3 draws: shown, no verdict
    ]
    papers = {("toy", "strong", "test"): {"models": {"MDCVAE": {"trecall@20": 0.303}}}}
    lines = compare.headline_lines({("toy", "strong"): {"test": rows}}, papers)
    assert lines[2:] == [
        "| toy · strong | MDCVAE | trecall@20 | 0.303 | 0.3100 ± 0.0124 (5) | "
        "EASE 0.3400 ± 0.0124 (5) | loses to |",
        "| toy · strong | DualNet | trecall@20 |  | 0.3100 ± 0.0248 (3) | "
        "EASE 0.3400 ± 0.0124 (5) | 3 draws: no verdict (model untuned) |",
    ]


def test_readme_headline_keeps_the_suites_tables_and_their_main_split(monkeypatch):
    """The results page's headline has every split of every table; the README's only the
    suite's tables, at their main split (cold items, LRMM's +F)."""

    def drawn(model, protocol, split, metric):
        values = (0.30, 0.32, 0.31, 0.30, 0.32)
        return record(
            model,
            protocol,
            split,
            {metric: 0},
            per_seed=[{metric: v} for v in values],
            split_seeds=list(range(5)),
            state=(stale.CURRENT, None),
        )

    records = [
        drawn("CVAE", "cold", "normal", "recall@300"),
        drawn("CVAE", "cold", "cold", "recall@300"),
        drawn("CVAE", "fixed", "P=1-random", "recall@300"),
        drawn("CVAE", "fixed", "P=10-random", "recall@300"),
        drawn("LRMM", "rating", "+F", "rmse"),
        drawn("LRMM", "rating", "-U", "rmse"),
        drawn("MDCVAE", "strong", "test", "trecall@20"),
    ]
    suite = {("toy", "cold"), ("toy", "fixed:P=1-random"), ("toy", "rating")}
    monkeypatch.setattr(report, "suite_tables", lambda name: suite)
    shown = lambda lines: sorted(line.split(" | ")[0] for line in lines[2:])
    assert shown(report.readme_headline(records, {})) == [
        "| toy · cold · cold",
        "| toy · fixed · P=1-random",
        "| toy · rating · +F",
    ]
    assert len(shown(report.headline(records, {}))) == len(records)


def test_headline_row_of_a_test_condition_takes_the_test_splits_baseline():
    """LRMM's missing-modality conditions (-U, ...) have no baseline of their own: a baseline
    scores them as the test split, so the headline pairs them with split test's best."""

    def rated(model, split, values, **extra):
        return record(
            model,
            "rating",
            split,
            {"rmse": 0},
            per_seed=[{"rmse": v} for v in values],
            split_seeds=list(range(len(values))),
            state=(stale.CURRENT, None),
            **extra,
        )

    splits = {
        "test": [rated("BiasMF", "test", (0.86, 0.87, 0.85, 0.86, 0.88), tuning={"trials": 10})],
        "-U": [rated("LRMM", "-U", (0.88, 0.89, 0.87, 0.88, 0.90), tuning={"trials": 10})],
    }
    lines = compare.headline_lines({("toy", "rating"): splits}, {})
    assert lines[2:] == [
        "| toy · rating · -U | LRMM | rmse |  | 0.8840 ± 0.0142 (5) | "
        "BiasMF 0.8640 ± 0.0142 (5) | loses to |"
    ]


def test_rows_with_tied_users_are_flagged(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    rows = [
        record("EASE", "fixed", "P=1", {"recall@50": 0.1, "tied_users": 0.97}),
        record("CVAE", "fixed", "P=1", {"recall@50": 0.2, "tied_users": 0.0}),
    ]
    (results / "x.json").write_text(json.dumps(rows))
    page = report.write_report(results, tmp_path / "out", tmp_path / "none.yaml").read_text()
    assert "**tied 97%**" in row(page, "EASE") and "tied" not in row(page, "CVAE")


def test_default_records_on_fewer_than_five_draws_are_marked(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    draws = [{"trecall@20": v} for v in (0.3, 0.31, 0.32, 0.33, 0.34)]
    rows = [
        record("EASE", "strong", "test", {"trecall@20": 0.3}),
        record(
            "CEASE",
            "strong",
            "test",
            {"trecall@20": 0.3},
            per_seed=draws[:3],
            split_seeds=[0, 1, 2],
        ),
        record(
            "MultiVAE",
            "strong",
            "test",
            {"trecall@20": 0.3},
            per_seed=draws,
            split_seeds=[0, 1, 2, 3, 4],
        ),
    ]
    (results / "x.json").write_text(json.dumps(rows))
    page = report.write_report(results, tmp_path / "out", tmp_path / "none.yaml").read_text()
    assert "· 1 draw " in row(page, "EASE") and "· 3 draws" in row(page, "CEASE")
    assert "draw" not in row(page, "MultiVAE")
