"""HybridDataset: RecBole's Dataset plus item content loaded once and validated.

yaml keys:
  content_fields: [bow, text_vec]   # content names, see recbole_hybrid/data/content.py
  content_missing: error | zero     # items of .inter without a .item row: error (default)
                                    # or a zero content row with mask False

Content fields that load_col does not name are loaded for ``item_content`` (whole matrices)
and are not joined into batches: a model that ignores them (BPR, MultiVAE) trains on the
batches RecBole's own Dataset would give it. Fields load_col names are joined as RecBole does,
and so is every field for a context-aware model (FM, DeepFM: it embeds all loaded fields).
"""

import os
from logging import getLogger

import numpy as np
import pandas as pd
import torch
from recbole.data.dataset import Dataset
from recbole.data.interaction import Interaction
from recbole.utils import FeatureType, ModelType

from recbole_hybrid.data.atomic_check import check_atomic_file
from recbole_hybrid.data.content import (
    MISSING_POLICIES,
    ContentError,
    build_item_content,
    items_with_content,
    validate_raw_item_frame,
)
from recbole_hybrid.data.protocols import split_by_protocol


class HybridDataset(Dataset):
    def __init__(self, config):
        self.content_names = list(config["content_fields"] or [])
        self.content_missing = config["content_missing"] or "error"
        if self.content_missing not in MISSING_POLICIES:
            raise ValueError(
                f"content_missing [{self.content_missing}] must be one of {MISSING_POLICIES}"
            )
        self._content_tokens = {}
        self._content = {}
        self._content_only_fields = set()  # loaded for item_content only, never joined
        self._header_types = {}  # {source: {field: type}} of each atomic file's header
        self._joins_all_fields = config["MODEL_TYPE"] == ModelType.CONTEXT
        super().__init__(config)

    @property
    def item_file_path(self):
        return os.path.join(self.dataset_path, f"{self.dataset_name}.item")

    def _get_load_and_unload_col(self, source):
        """Load the configured content fields of ``.item`` even if load_col omits them."""
        load_col, unload_col = super()._get_load_and_unload_col(source)
        source = getattr(source, "value", source)
        if source == "item" and self.content_names and load_col is not None:
            wanted = {
                f"{n}{suffix}" for n in self.content_names for suffix in ("", "_ids", "_counts")
            }
            if not self._joins_all_fields:
                self._content_only_fields = wanted - set(load_col)
            load_col = set(load_col) | {self.iid_field} | wanted
        return load_col, unload_col

    def _load_feat(self, filepath, source):
        """Check the file line by line (data/atomic_check.py), then validate the raw ``.item``
        rows before RecBole drops duplicates, remaps or fills."""
        if (
            os.path.isfile(filepath)
            and str(self.config["encoding"] or "utf-8").lower().replace("-", "") == "utf8"
        ):
            self._header_types[getattr(source, "value", source)] = check_atomic_file(
                filepath, self.config["field_separator"], self.config["seq_separator"]
            )
        feat = super()._load_feat(filepath, source)
        if getattr(source, "value", source) == "item" and self.content_names and feat is not None:
            validate_raw_item_frame(
                feat, self.iid_field, self.content_names, self.field2type, filepath
            )
        return feat

    # -- loading: which items have content; items of .inter without a .item row
    def _load_data(self, token, dataset_path):
        super()._load_data(token, dataset_path)
        self._check_id_types(dataset_path)
        if not self.content_names:
            return
        if self.item_feat is None:
            raise ContentError(
                f"{self.item_file_path}: content_fields {self.content_names} are configured "
                "but no .item file was loaded (missing file, or load_col without an 'item' entry)"
            )
        for name in self.content_names:
            self._content_tokens[name] = items_with_content(
                self.item_feat, self.iid_field, name, self.field2type, self.item_file_path
            )
        self._handle_items_without_rows()

    def _check_id_types(self, dataset_path):
        """User and item ids are tokens in every atomic file (a float id is never remapped, and
        then matches no .item / .user row)."""
        for source, types in self._header_types.items():
            for field in (self.uid_field, self.iid_field):
                if types.get(field, "token") != "token":
                    raise ContentError(
                        f"{os.path.join(dataset_path, self.dataset_name)}.{source} (header): "
                        f"id field [{field}] is typed {types[field]}, "
                        f"ids must be token ({field}:token)"
                    )

    def _handle_items_without_rows(self):
        known = set(self.item_feat[self.iid_field].values)
        inter_items = pd.unique(self.inter_feat[self.iid_field].values)
        missing = [i for i in inter_items if i not in known]
        if not missing:
            return
        share = len(missing) / len(inter_items)
        if self.content_missing == "error" or share > self.config["content_missing_max_share"]:
            raise ContentError(
                f"{self.item_file_path}: {len(missing)} of the {len(inter_items)} items of the "
                f"interactions ({share:.1%}) have no row in field {self.iid_field}, e.g. "
                f"{missing[:5]}; add them, or set content_missing: zero to give them an all-zero "
                "content row with mask False (allowed for at most content_missing_max_share = "
                f"{self.config['content_missing_max_share']} of the items)"
            )
        getLogger().warning(
            f"{self.item_file_path}: {len(missing)} items ({share:.1%}) have no content row "
            "and get all-zero content (content_missing: zero)"
        )
        # RecBole would silently drop their interactions (filter_inter_by_user_or_item):
        # keep them with an empty row instead; the mask marks them as content-less.
        empty = pd.DataFrame({self.iid_field: missing})
        for field in self.item_feat.columns:
            if field != self.iid_field and self.field2type[field].value.endswith("seq"):
                dtype = str if self.field2type[field] == FeatureType.TOKEN_SEQ else float
                empty[field] = [np.array([], dtype=dtype) for _ in missing]
        self.item_feat = pd.concat([self.item_feat, empty], ignore_index=True)

    def _change_feat_format(self):
        """Idempotent: protocols build copies of an already converted dataset."""
        if not hasattr(self.inter_feat, "interaction"):
            super()._change_feat_format()

    def join(self, df):
        """RecBole's join, without the content-only fields (module docstring)."""
        if self.user_feat is not None and self.uid_field in df:
            df.update(self.user_feat[df[self.uid_field]])
        if self.item_feat is not None and self.iid_field in df:
            fields = [f for f in self.item_feat.columns if f not in self._content_only_fields]
            items = df[self.iid_field]
            df.update(Interaction({f: self.item_feat[f][items] for f in fields}))
        return df

    def build_protocol(self):
        """``ProtocolSplit`` of this dataset by ``config['protocol']``."""
        return split_by_protocol(self)

    # -- content access for models
    def item_content(self, name):
        """``ItemContent`` (matrix + mask) for content ``name``, built on first use."""
        if name not in self._content:
            if name not in self._content_tokens:
                raise ContentError(
                    f"content [{name}] was not loaded: add it to content_fields "
                    f"(configured: {self.content_names})"
                )
            tokens = self.field2id_token[self.iid_field]
            has = self._content_tokens[name]
            mask = torch.as_tensor(np.fromiter((t in has for t in tokens), bool, len(tokens)))
            self._content[name] = build_item_content(self, name, mask)
        return self._content[name]
