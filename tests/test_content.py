"""Item content as atomic features: loading, alignment and every malformed-input case."""

import numpy as np
import pytest
import torch

from recbole.data.interaction import Interaction

from recbole_hybrid.config import Config
from recbole_hybrid.data import create_dataset
from recbole_hybrid.data.content import ContentError

INTER = [("u1", "i1"), ("u1", "i2"), ("u2", "i2"), ("u2", "i3"), ("u3", "i1"), ("u3", "i3")]
GOOD_ITEMS = {
    "i1": {"vec": "0.1 0.2 0.3", "bow_ids": "apple pear", "bow_counts": "2 1", "tags": "x y"},
    "i2": {"vec": "1 0 0", "bow_ids": "pear", "bow_counts": "3", "tags": "y"},
    "i3": {"vec": "0 1 0", "bow_ids": "plum apple", "bow_counts": "1 1", "tags": "z"},
}
ITEM_HEADER = [
    "item_id:token",
    "vec:float_seq",
    "bow_ids:token_seq",
    "bow_counts:float_seq",
    "tags:token_seq",
]


def write_dataset(root, items=GOOD_ITEMS, inter=INTER, header=ITEM_HEADER, name="tiny"):
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token"] + [f"{u}\t{i}" for u, i in inter]
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    if items is not None:
        fields = [h.split(":")[0] for h in header]
        rows = ["\t".join(header)]
        for item, values in items.items() if isinstance(items, dict) else items:
            rows.append("\t".join([item] + [values.get(f, "") for f in fields[1:]]))
        (folder / f"{name}.item").write_text("\n".join(rows) + "\n")
    return root


def load(root, name="tiny", model="ContentKNN", **overrides):
    config_dict = {
        "data_path": str(root),
        "content_fields": ["vec", "bow", "tags"],
        "state": "ERROR",
        "show_progress": False,
    }
    config_dict.update(overrides)
    return create_dataset(Config(model, name, config_dict=config_dict))


def internal(dataset, token):
    return int(dataset.field2token_id["item_id"][token])


def test_content_aligned_with_internal_ids(tmp_path):
    dataset = load(write_dataset(tmp_path))
    vec = dataset.item_content("vec")
    assert not vec.is_sparse and vec.dim == 3
    assert torch.allclose(vec.matrix[internal(dataset, "i1")], torch.tensor([0.1, 0.2, 0.3]))
    assert vec.mask.tolist() == [False, True, True, True]  # row 0 is RecBole's padding
    bow = dataset.item_content("bow")
    assert bow.is_sparse
    vocab = list(dataset.field2id_token["bow_ids"][1:])
    row = bow.rows(torch.tensor([internal(dataset, "i1")]))[0]
    assert row[vocab.index("apple")] == 2 and row[vocab.index("pear")] == 1 and row.sum() == 3
    tags = dataset.item_content("tags").to_scipy()
    assert tags[internal(dataset, "i3")].sum() == 1


def test_content_survives_split_copies(tmp_path):
    dataset = load(
        write_dataset(tmp_path),
        eval_args={
            "split": {"RS": [0.5, 0.25, 0.25]},
            "order": "RO",
            "group_by": "user",
            "mode": "full",
        },
    )
    train, _, _ = dataset.build()
    assert torch.equal(train.item_content("vec").matrix, dataset.item_content("vec").matrix)


@pytest.mark.parametrize(
    "field, bad_value, message",
    [
        ("vec", "1 2", "different lengths"),
        ("vec", "nan 0 1", "NaN or inf"),
        ("vec", "inf 0 1", "NaN or inf"),
        ("bow_counts", "1", "differ in length"),
        ("bow_counts", "-1 2", "negative counts"),
    ],
)
def test_malformed_rows_name_file_and_field(tmp_path, field, bad_value, message):
    items = {k: dict(v) for k, v in GOOD_ITEMS.items()}
    items["i1"][field] = bad_value
    with pytest.raises(ContentError, match=message) as err:
        load(write_dataset(tmp_path, items))
    assert "tiny.item" in str(err.value) and field in str(err.value)


def test_missing_field_is_named(tmp_path):
    with pytest.raises(ContentError, match=r"tiny.item.*\[image_vec\] not found"):
        load(write_dataset(tmp_path), content_fields=["image_vec"])


def test_wrong_field_type(tmp_path):
    header = [
        "item_id:token",
        "vec:float",
        "bow_ids:token_seq",
        "bow_counts:float_seq",
        "tags:token_seq",
    ]
    items = {k: dict(v, vec="0.5") for k, v in GOOD_ITEMS.items()}
    with pytest.raises(ContentError, match=r"\[vec\] is float"):
        load(write_dataset(tmp_path, items, header=header))


def test_duplicate_item_rows(tmp_path):
    items = list(GOOD_ITEMS.items()) + [("i2", GOOD_ITEMS["i2"])]
    with pytest.raises(ContentError, match="duplicate rows.*i2"):
        load(write_dataset(tmp_path, items))


def test_no_item_file(tmp_path):
    with pytest.raises(ContentError, match="no .item file"):
        load(write_dataset(tmp_path, items=None))


def test_interaction_items_without_rows_error_by_default(tmp_path):
    items = {k: v for k, v in GOOD_ITEMS.items() if k != "i3"}
    with pytest.raises(
        ContentError, match=r"1 of the 3 items of the interactions \(33.3%\) have no row.*i3"
    ):
        load(write_dataset(tmp_path, items))


def test_zero_fallback_keeps_interactions_and_masks(tmp_path):
    items = {k: v for k, v in GOOD_ITEMS.items() if k != "i3"}
    with pytest.raises(
        ContentError, match="content_missing_max_share = 0.1"
    ):  # 1 of 3 items: too many
        load(write_dataset(tmp_path, items), content_missing="zero")
    dataset = load(
        write_dataset(tmp_path, items), content_missing="zero", content_missing_max_share=0.5
    )
    assert dataset.inter_num == len(INTER)  # RecBole would have dropped i3's interactions
    i3 = internal(dataset, "i3")
    for name in ("vec", "bow", "tags"):
        content = dataset.item_content(name)
        assert not content.mask[i3]
        assert content.rows(torch.tensor([i3])).abs().sum() == 0


def test_empty_value_is_masked_not_an_error(tmp_path):
    items = {k: dict(v) for k, v in GOOD_ITEMS.items()}
    items["i2"]["vec"] = ""
    items["i2"]["bow_ids"] = items["i2"]["bow_counts"] = ""
    dataset = load(write_dataset(tmp_path, items))
    i2 = internal(dataset, "i2")
    assert not dataset.item_content("vec").mask[i2]
    assert not dataset.item_content("bow").mask[i2]
    assert dataset.item_content("tags").mask[i2]


def test_bad_missing_policy(tmp_path):
    with pytest.raises(ValueError, match="content_missing"):
        load(write_dataset(tmp_path), content_missing="mean")


def test_unconfigured_content_name(tmp_path):
    dataset = load(write_dataset(tmp_path), content_fields=["vec"])
    with pytest.raises(ContentError, match=r"content \[bow\] was not loaded"):
        dataset.item_content("bow")
    assert np.isfinite(dataset.item_content("vec").matrix.numpy()).all()


def test_content_fields_are_not_joined_into_batches_unless_load_col_names_them(tmp_path):
    root = write_dataset(tmp_path)
    dataset = load(root).build()[0]  # load_col names no .item field: for item_content only
    batch = Interaction(
        {"item_id": torch.tensor([internal(dataset, "i1"), internal(dataset, "i3")])}
    )
    assert set(dataset.join(batch).columns) == {"item_id"}
    assert dataset.item_content("vec").dim == 3
    named = load(
        root, load_col={"inter": ["user_id", "item_id"], "item": ["item_id", "vec"]}
    ).build()[0]
    batch = Interaction({"item_id": torch.tensor([internal(named, "i1"), internal(named, "i3")])})
    assert set(named.join(batch).columns) == {"item_id", "vec"}  # joined as RecBole does
    assert torch.allclose(batch["vec"][0], torch.tensor([0.1, 0.2, 0.3]))
    assert named.item_content("bow").is_sparse  # still loaded for item_content
    labeled = {
        "split": {"RS": [0.5, 0.25, 0.25]},
        "order": "RO",
        "group_by": None,
        "mode": "labeled",
    }
    context = load(
        root, model="FM", metrics=["AUC"], valid_metric="AUC", eval_args=labeled
    ).build()[0]
    batch = Interaction({"item_id": torch.tensor([internal(context, "i1")])})
    assert {"vec", "bow_ids", "tags"} <= set(context.join(batch).columns)  # FM embeds every field


GOOD_ITEM_LINES = ["\t".join(ITEM_HEADER)] + [
    "\t".join([k, v["vec"], v["bow_ids"], v["bow_counts"], v["tags"]])
    for k, v in GOOD_ITEMS.items()
]


def write_raw(root, name, inter_lines=None, item_lines=None):
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    default_inter = ["user_id:token\titem_id:token"] + [f"{u}\t{i}" for u, i in INTER]
    for suffix, lines in (
        ("inter", inter_lines or default_inter),
        ("item", item_lines or GOOD_ITEM_LINES),
    ):
        data = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode()
        (folder / f"{name}.{suffix}").write_bytes(data)
    return root


@pytest.mark.parametrize(
    "case, inter, items, message",
    [
        (
            "tab in a field",
            None,
            GOOD_ITEM_LINES[:2] + ["i2\t1 0 0\tpear\t3\ty\textra"] + GOOD_ITEM_LINES[3:],
            r"tiny.item:3: 6 fields, the header has 5",
        ),
        (
            "text in a vector",
            None,
            GOOD_ITEM_LINES[:2] + ["i2\t1 zero 0\tpear\t3\ty"] + GOOD_ITEM_LINES[3:],
            r"tiny.item:3: field \[vec\] \(float_seq\) holds \[zero\], not a number",
        ),
        (
            "leading quote",
            None,
            GOOD_ITEM_LINES[:2] + ['i2\t1 0 0\tpear\t3\t"y'] + GOOD_ITEM_LINES[3:],
            r"tiny.item:3: field \[tags\] starts with a double quote",
        ),
        (
            "huge field",
            None,
            GOOD_ITEM_LINES[:2] + ["i2\t1 0 0\tpear\t3\t" + "y " * 70000] + GOOD_ITEM_LINES[3:],
            r"tiny.item:3: field \[tags\] is 140000 characters long",
        ),
        ("header-only .item", None, GOOD_ITEM_LINES[:1], r"tiny.item: a header and no rows"),
        (
            "empty .inter",
            ["user_id:token\titem_id:token"],
            None,
            r"tiny.inter: a header and no rows",
        ),
        (
            "untyped header",
            ["user_id\titem_id:token", "u1\ti1"],
            None,
            r"tiny.inter:1: header field \[user_id\]",
        ),
        (
            "float item ids",
            ["user_id:token\titem_id:float"] + [f"{u}\t{i[1:]}" for u, i in INTER],
            None,
            r"tiny.inter \(header\): id field \[item_id\] is typed float",
        ),
    ],
)
def test_malformed_atomic_files_name_file_line_and_field(tmp_path, case, inter, items, message):
    with pytest.raises(ValueError, match=message):
        load(write_raw(tmp_path, "tiny", inter, items))


def test_non_utf8_bytes_are_named(tmp_path):
    inter = b"user_id:token\titem_id:token\nu1\ti1\nu2\ti\xe92\n"
    with pytest.raises(ValueError, match=r"tiny.inter:3: not UTF-8 \(byte 0xe9 at column 5\)"):
        load(write_raw(tmp_path, "tiny", inter, None))
