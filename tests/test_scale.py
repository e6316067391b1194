"""benchmarks/scale.py's growth law and block copies."""

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import scale  # noqa: E402


def rows(seconds, memory):
    return [
        {"model": "M", "factor": f, "epoch_seconds": [seconds(f)], "peak_mb": memory(f)}
        for f in (1, 2, 4)
    ]


def test_doubling_law_recovers_a_law_through_three_sizes():
    records = rows(lambda f: 1 + 2 * f**1.5, lambda f: 500 + 100 * f)
    assert scale.doubling_law(records, scale.cost) == pytest.approx((1, 2, 1.5))
    assert scale.doubling_law(records, lambda r: r["peak_mb"]) == pytest.approx((500, 100, 1))
    flat = rows(lambda f: 3.0, lambda f: 500)
    assert scale.doubling_law(flat, scale.cost) is None  # nothing grows: no law


def test_block_copies_multiply_users_items_and_keep_content(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "citeulike-a.inter").write_text("user_id:token\titem_id:token\n0\t5\n1\t5\n1\t6\n")
    (source / "citeulike-a.item").write_text("item_id:token\tbow:token_seq\n5\ta b\n6\tc\n")
    name = scale.block_copies(source, tmp_path / "out", 2)
    read = lambda ext: pd.read_csv(
        tmp_path / "out" / name / f"{name}.{ext}", sep="\t", dtype=str, keep_default_na=False
    )
    inter, item = read("inter"), read("item")
    assert len(inter) == 6 and inter["user_id:token"].nunique() == 4
    assert set(inter[inter["user_id:token"] == "1_c1"]["item_id:token"]) == {"5_c1", "6_c1"}
    assert dict(zip(item["item_id:token"], item["bow:token_seq"])) == {
        "5": "a b",
        "6": "c",
        "5_c1": "a b",
        "6_c1": "c",
    }
