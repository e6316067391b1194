"""python -m dataset_atomic reviews: a user's review file (Amazon 2014 / 2018 JSON lines, gzipped
or not, a TSV) into atomic files and a dataset yaml that the rating and leave-one-out protocols
run as given; text round-trips exactly; duplicate pairs keep the latest review."""

import gzip
import json

import numpy as np
import pytest

from dataset_atomic.__main__ import main
from dataset_atomic.reviews import escape_cell, unescape_cell
from recbole_hybrid.quick_start import run_recbole_hybrid

TRICKY = [
    "tab\there",
    'a "quote" inside',
    '"starts with a quote',
    "two\nlines\r\nand a \\ backslash",
    "café ✓ naïve — ünïcödé",
    "ends with a backslash \\",
    "\\t is not a tab",
    "",
]


def reviews(n_users=30, n_items=12, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, 6, replace=False):
            rows.append(
                {
                    "reviewerID": f"U{u}",
                    "asin": f"B{i:03d}",
                    "overall": float(rng.integers(1, 6)),
                    "reviewText": TRICKY[len(rows) % len(TRICKY)] + f" good {u} {i}",
                    "summary": "s",
                    "unixReviewTime": 1000 + len(rows),
                }
            )
    return rows


def write_json(path, rows, extra=None):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf8") as out:
        for row in rows:
            out.write(json.dumps(dict(row, **(extra or {}))) + "\n")
    return path


def test_escape_round_trips_every_text():
    for text in TRICKY:
        cell = escape_cell(text)
        assert (
            "\t" not in cell and "\n" not in cell and "\r" not in cell and not cell.startswith('"')
        )
        assert unescape_cell(cell) == text


@pytest.mark.slow
@pytest.mark.parametrize(
    "file_name, extra",
    [
        ("reviews_2014.json.gz", None),
        (
            "reviews_2018.json",
            {"vote": "3", "style": {"Size:": " Large"}, "verified": True, "image": ["http://x"]},
        ),
    ],
)
def test_amazon_files_convert_and_run_the_protocols(tmp_path, in_tmp, file_name, extra, capsys):
    rows = reviews()
    source = write_json(tmp_path / file_name, rows, extra)
    meta = write_json(
        tmp_path / "meta.json",
        [
            {
                "asin": f"B{i:03d}",
                "title": f"Guitar string set {i}",
                "category": ["Musical Instruments", "Strings"],
            }
            for i in range(12)
        ],
    )
    main(
        [
            "reviews",
            "--input",
            str(source),
            "--name",
            "mine",
            "--meta",
            str(meta),
            "--out",
            str(tmp_path / "data"),
        ]
    )
    assert '"duplicate_pairs_dropped": 0' in capsys.readouterr().out
    config_files = [str(tmp_path / "data" / "mine.yaml")]
    base = {
        "state": "ERROR",
        "show_progress": False,
        "data_path": str(tmp_path / "data"),
        "epochs": 2,
    }
    loo = run_recbole_hybrid(
        "MostPop",
        "mine",
        config_file_list=config_files,
        config_dict=dict(base, protocol="loo99"),
        saved=False,
    )
    assert set(loo["test_result"]) >= {"hit@10", "ndcg@10"}
    for protocol in ("rating", "loo-rating"):
        rated = run_recbole_hybrid(
            "BiasMF",
            "mine",
            config_file_list=config_files,
            config_dict=dict(base, protocol=protocol),
            saved=False,
        )
        assert 0 < rated["test_result"]["rmse"] < 4
    # what RecBole reads back is what was written
    from recbole_hybrid.config import Config
    from recbole_hybrid.data import create_dataset

    config = Config(
        "MostPop",
        "mine",
        config_file_list=config_files,
        config_dict=dict(base, load_col={"inter": ["user_id", "item_id", "review_raw"]}),
    )
    dataset = create_dataset(config)
    cells = dataset.field2id_token["review_raw"][
        dataset.inter_feat["review_raw"].to_numpy()
    ]  # RecBole's ids -> text
    read_back = {unescape_cell(str(c)) for c in cells}
    assert read_back == {r["reviewText"] for r in rows}


def test_tsv_with_named_columns_duplicates_keep_the_latest(tmp_path, capsys):
    lines = [
        "who\twhat\tstars\twhen\tbody",
        "u1\ti1\t5\t10\tfirst",
        "u1\ti2\t4\t11\tother",
        "u1\ti1\t2\t30\tchanged my mind",
        "u2\ti1\t3\t12\tok",
    ]
    (tmp_path / "r.tsv").write_text("\n".join(lines) + "\n")
    main(
        [
            "reviews",
            "--input",
            str(tmp_path / "r.tsv"),
            "--name",
            "t",
            "--out",
            str(tmp_path / "data"),
            "--columns",
            "user=who",
            "item=what",
            "rating=stars",
            "timestamp=when",
            "text=body",
        ]
    )
    assert '"duplicate_pairs_dropped": 1' in capsys.readouterr().out
    inter = (tmp_path / "data" / "t" / "t.inter").read_text().splitlines()
    assert [line.split("\t")[:4] for line in inter[1:]] == [
        ["u1", "i2", "4", "11"],
        ["u1", "i1", "2", "30"],
        ["u2", "i1", "3", "12"],
    ]
    with pytest.raises(SystemExit, match="exist: not overwritten"):
        main(
            [
                "reviews",
                "--input",
                str(tmp_path / "r.tsv"),
                "--name",
                "t",
                "--out",
                str(tmp_path / "data"),
            ]
        )


def test_malformed_lines_are_named(tmp_path):
    (tmp_path / "bad.json").write_text(
        '{"reviewerID": "u1", "asin": "i1", "overall": 5, "unixReviewTime": 1}\n'
        '{"reviewerID": "u2", "asin": "i1", "overall": "five", "unixReviewTime": 2}\n'
    )
    with pytest.raises(SystemExit, match=r"bad.json:2: field \[overall\] is not a number: 'five'"):
        main(
            [
                "reviews",
                "--input",
                str(tmp_path / "bad.json"),
                "--name",
                "b",
                "--out",
                str(tmp_path / "data"),
            ]
        )
