"""Review documents, built from the training split only (DEAMER, LRMM).

The review text of an interaction is the ``.inter`` token field named by ``review_field``
(the whole review, words separated by spaces, one RecBole token: it gets no global
vocabulary). From the *training* interactions only:
  * a user's document is her training reviews, an item's document the training reviews it
    received, in time order, the most recent ``max_doc_units`` units kept;
  * texts become vectors with Doc2Vec (PV-DBOW with word vectors; gensim, one worker, seeded)
    trained on the training reviews and the items' metadata words, cached in
    ``<checkpoint_dir>/doc2vec/`` under a key of the training reviews and the settings.
``text_unit: review`` makes a document the sequence of its reviews' Doc2Vec vectors;
``text_unit: word`` the sequence of its words' vectors. A review of a validation or test
interaction is never read. ``max_item_reviews: N`` keeps at most N (a seeded choice) of each
item's training reviews in its document (the LRMM paper's Fig. 4); users' documents keep theirs.
A user or item without training reviews (or an empty review
text only) gets an empty document, ``Documents.mask`` False: a model sees the gap.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from logging import getLogger

import gensim
import numpy as np
import torch

from dataset_atomic.text import train_doc2vec
from recbole_hybrid.data.content import ContentError
from recbole_hybrid.data.training_split import check_cap
from recbole_hybrid.progress import ProgressLog

DOC2VEC_SETTINGS = ("d2v_dim", "d2v_epochs", "d2v_min_count", "d2v_window", "seed")
TEXT_UNITS = ("review", "word")
EMPTY_TOKENS = ("", "[PAD]")  # an empty review cell (RecBole fills a missing token with [PAD])


@dataclass
class Documents:
    """Row r (a user or item id) is the sequence ``units[ids[r, :lengths[r]]]``."""

    ids: torch.Tensor  # [n_rows, max_len] long, 1-based unit ids, 0 pads
    lengths: torch.Tensor  # [n_rows] long
    units: torch.Tensor  # [n_units + 1, dim] float, row 0 (padding) zero
    sources: torch.Tensor = (
        None  # [n_rows, max_len] long: the training review (1-based) of each unit
    )
    max_len: int = None  # units kept per row (the last ones; None or 0: all)
    vocab: dict = None  # word -> unit id, for documents of words (new rows: ``word_sequences``)

    @property
    def mask(self):
        return self.lengths > 0

    @property
    def dim(self):
        return self.units.shape[1]


def interaction_times(dataset):
    """The interactions' timestamps (zeros when the dataset has no time field)."""
    if dataset.time_field in dataset.field2type:
        return dataset.inter_feat[dataset.time_field].numpy()
    return np.zeros(len(dataset.inter_feat))


def check_training_split(dataset, what="review documents"):
    """Refuse anything but the training split: documents must not see held-out reviews."""
    if getattr(dataset, "split_role", None) != "train":
        raise ContentError(
            f"{what} are built from the training split only: pass the training dataset "
            "(the one RecBole gives the model: train_data.dataset), not the full dataset "
            "or a validation/test split"
        )


@dataclass
class TrainingReviews:
    """The training interactions with their review words, in a canonical order."""

    users: np.ndarray
    items: np.ndarray
    times: np.ndarray
    words: list  # list of word lists

    @classmethod
    def of(cls, dataset, review_field):
        check_training_split(dataset)
        if review_field not in dataset.field2type:
            raise ContentError(
                f"{dataset.dataset_name}.inter: review field [{review_field}] was not loaded; "
                "add it to load_col: inter (the dataset yaml's review_field)"
            )
        inter = dataset.inter_feat
        users = inter[dataset.uid_field].numpy()
        items = inter[dataset.iid_field].numpy()
        times = interaction_times(dataset)
        tokens = dataset.field2id_token[review_field]
        texts = tokens[inter[review_field].numpy()]
        # canonical order: by raw user and item token, so RecBole's row order does not matter
        user_tokens = dataset.field2id_token[dataset.uid_field][users]
        item_tokens = dataset.field2id_token[dataset.iid_field][items]
        order = np.lexsort((item_tokens, user_tokens))
        words = [[] if t in EMPTY_TOKENS else str(t).split() for t in texts[order]]
        return cls(users[order], items[order], times[order], words)

    def digest(self, dataset):
        h = hashlib.sha1()
        for u, i, w in zip(self.users, self.items, self.words):
            h.update(
                f"{dataset.field2id_token[dataset.uid_field][u]}\t"
                f"{dataset.field2id_token[dataset.iid_field][i]}\t{' '.join(w)}\n".encode()
            )
        return h.hexdigest()


class TextVectors:
    """Doc2Vec vectors of the training reviews and of the words, cached per training split."""

    def __init__(self, reviews, meta_words, config, dataset):
        settings = {k: config[k] for k in DOC2VEC_SETTINGS}
        key = dict(
            settings,
            dataset=config["dataset"],
            reviews=reviews.digest(dataset),
            meta=hashlib.sha1(json.dumps(meta_words).encode()).hexdigest(),
            gensim=gensim.__version__,
            version=1,
        )
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        path = os.path.join(config["checkpoint_dir"], "doc2vec", f"d2v-{digest}.npz")
        if os.path.isfile(path):
            cached = np.load(path, allow_pickle=False)
            self.review_vectors, self.word_vectors = cached["reviews"], cached["words"]
            self.vocab = {w: i for i, w in enumerate(cached["vocab"].tolist())}
            getLogger().info(f"Doc2Vec vectors loaded from {path}")
            return
        model = train_doc2vec(
            reviews.words + meta_words,
            settings["d2v_dim"],
            settings["d2v_epochs"],
            settings["d2v_min_count"],
            settings["d2v_window"],
            settings["seed"],
            report=ProgressLog(config["progress_interval"] or 10),
        )
        n = len(reviews.words)
        self.review_vectors = (
            np.stack([model.dv[i] for i in range(n)]).astype(np.float32)
            if n
            else np.zeros((0, settings["d2v_dim"]), np.float32)
        )
        self.review_vectors[[len(w) == 0 for w in reviews.words]] = 0.0
        vocab = list(model.wv.index_to_key)
        self.word_vectors = model.wv.vectors.astype(np.float32)
        self.vocab = {w: i for i, w in enumerate(vocab)}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.savez(
            path + ".tmp.npz",
            reviews=self.review_vectors,
            words=self.word_vectors,
            vocab=np.array(vocab, dtype=str),
        )
        os.replace(path + ".tmp.npz", path)
        getLogger().info(f"Doc2Vec vectors saved in {path}")

    def word_ids(self, words):
        """0-based vocabulary ids of the words Doc2Vec knows (the others are dropped)."""
        return [self.vocab[w] for w in words if w in self.vocab]


def pad_sequences(sequences, max_len):
    """List of id lists (1-based) -> (ids [n, L] long, lengths [n]); the last ``max_len`` kept."""
    sequences = [s[-max_len:] if max_len else s for s in sequences]
    width = max([len(s) for s in sequences] + [1])
    ids = np.zeros((len(sequences), width), dtype=np.int64)
    for r, s in enumerate(sequences):
        ids[r, : len(s)] = s
    return torch.from_numpy(ids), torch.tensor([len(s) for s in sequences], dtype=torch.long)


def make_documents(sequences, unit_vectors, max_len, sources=None, vocab=None):
    """``sources``: per sequence, the training review number of each unit (same shape)."""
    ids, lengths = pad_sequences(sequences, max_len)
    units = np.concatenate([np.zeros((1, unit_vectors.shape[1]), np.float32), unit_vectors])
    origin = pad_sequences(sources, max_len)[0] if sources is not None else None
    return Documents(ids, lengths, torch.from_numpy(units), origin, max_len, vocab)


def word_sequences(word_lists, vocab):
    """Unit ids (``vocab``: word -> id) of each word list; words outside ``vocab`` are dropped."""
    return [[vocab[w] for w in words if w in vocab] for words in word_lists]


class PairReviews(torch.nn.Module):
    """The training review number (1-based, as in ``Documents.sources``) of each training
    (user, item) pair, 0 for any other pair: what ``own_review: exclude`` leaves out of the
    pair's user and item documents while that pair is scored in training."""

    def __init__(self, users, items, n_items):
        super().__init__()
        keys = torch.as_tensor(users, dtype=torch.long) * n_items + torch.as_tensor(
            items, dtype=torch.long
        )
        order = torch.argsort(keys)
        self.n_items = n_items
        self.register_buffer("keys", keys[order], persistent=False)
        self.register_buffer("numbers", order + 1, persistent=False)

    def forward(self, users, items):
        keys = users.long() * self.n_items + items.long()
        pos = torch.searchsorted(self.keys, keys).clamp(max=max(len(self.keys) - 1, 0))
        return torch.where(self.keys[pos] == keys, self.numbers[pos], torch.zeros_like(keys))


def group_in_time_order(rows, times, n_rows, keep):
    """Per row id (user or item), the indices of its entries where ``keep`` is True, oldest
    first."""
    order = np.lexsort((np.arange(len(rows)), times, rows))
    order = order[keep[order]]
    groups = [[] for _ in range(n_rows)]
    for idx in order:
        groups[rows[idx]].append(int(idx))
    return groups


def cap_groups(groups, cap, seed):
    """At most ``cap`` entries of each group, a seeded choice, in their order
    (``max_item_reviews``)."""
    if check_cap("max_item_reviews", cap) is None:
        return groups
    rng = np.random.default_rng(seed)
    return [
        [g[i] for i in np.sort(rng.choice(len(g), int(cap), replace=False))] if len(g) > cap else g
        for g in groups
    ]


def item_token_words(dataset, field):
    """Per internal item id, the words of the ``.item`` token_seq field ``field`` (e.g. meta)."""
    if field not in dataset.field2type:
        raise ContentError(
            f"{dataset.item_file_path}: field [{field}] was not loaded (load_col: item)"
        )
    feat = dataset.item_feat
    values = feat[field].numpy() if hasattr(feat, "interaction") else None
    tokens = dataset.field2id_token[field]
    if values is None or values.ndim != 2:
        raise ContentError(f"{dataset.item_file_path}: field [{field}] must be token_seq (words)")
    return [[str(tokens[t]) for t in row if t > 0] for row in values]


def review_documents(dataset, config, meta_field=None):
    """{'user': Documents, 'item': Documents[, 'meta': Documents], 'own': PairReviews} from the
    training split.

    yaml: review_field, text_unit (review | word), max_doc_units, max_item_reviews, d2v_* settings.
    ``meta``: the items' metadata words (``.item`` token_seq ``meta_field``) as word vectors.
    """
    unit = config["text_unit"]
    if unit not in TEXT_UNITS:
        raise ValueError(f"text_unit [{unit}] must be one of {TEXT_UNITS}")
    reviews = TrainingReviews.of(dataset, config["review_field"])
    meta_words = item_token_words(dataset, meta_field) if meta_field else []
    vectors = TextVectors(reviews, meta_words, config, dataset)
    has_text = np.array([len(w) > 0 for w in reviews.words], dtype=bool)
    max_len = config["max_doc_units"]
    docs = {}
    for side, rows, n_rows in (
        ("user", reviews.users, dataset.user_num),
        ("item", reviews.items, dataset.item_num),
    ):
        groups = group_in_time_order(rows, reviews.times, n_rows, has_text)
        if side == "item":
            groups = cap_groups(groups, config["max_item_reviews"], config["seed"])
        if unit == "review":
            sequences = [[i + 1 for i in g] for g in groups]
            docs[side] = make_documents(sequences, vectors.review_vectors, max_len, sequences)
        else:
            word_ids = [vectors.word_ids(words) for words in reviews.words]
            sequences = [[w + 1 for i in g for w in word_ids[i]] for g in groups]
            sources = [[i + 1 for i in g for _ in word_ids[i]] for g in groups]
            docs[side] = make_documents(sequences, vectors.word_vectors, max_len, sources)
    docs["own"] = PairReviews(reviews.users, reviews.items, dataset.item_num)
    if meta_field:  # unit id = 1 + Doc2Vec word id; words Doc2Vec does not know are dropped
        vocab = {w: i + 1 for w, i in vectors.vocab.items()}
        docs["meta"] = make_documents(
            word_sequences(meta_words, vocab),
            vectors.word_vectors,
            config["max_meta_words"],
            vocab=vocab,
        )
    return docs


def item_word_counts(dataset, review_field, extra_words=None):
    """Bag of words [n_items, vocab] (scipy CSR, counts) of each item's training reviews,
    plus ``extra_words`` (a word list per item id, e.g. its metadata); the vocabulary is
    the words of these documents only (sorted)."""
    import scipy.sparse as sp

    reviews = TrainingReviews.of(dataset, review_field)
    docs = (
        [list(words) for words in extra_words]
        if extra_words
        else [[] for _ in range(dataset.item_num)]
    )
    for item, words in zip(reviews.items, reviews.words):
        docs[item].extend(words)
    vocab = {w: i for i, w in enumerate(sorted({w for d in docs for w in d}))}
    rows = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
    cols = np.array([vocab[w] for d in docs for w in d], dtype=np.int64)
    matrix = sp.csr_matrix(
        (np.ones(len(cols), np.float32), (rows, cols)), shape=(len(docs), len(vocab))
    )
    matrix.sum_duplicates()
    return matrix


def history_documents(dataset, item_vectors, max_len):
    """Users' documents when there are no reviews (e.g. lfm2k): the sequence of the content
    vectors (``item_vectors`` [n_items, dim], an ``ItemContent`` matrix) of the items of her
    training interactions, in time order."""
    check_training_split(dataset, "history documents")
    inter = dataset.inter_feat
    users = inter[dataset.uid_field].numpy()
    items = inter[dataset.iid_field].numpy()
    groups = group_in_time_order(
        users, interaction_times(dataset), dataset.user_num, np.ones(len(users), dtype=bool)
    )
    sequences = [[int(items[i]) for i in g] for g in groups]  # item id = row of item_vectors
    ids, lengths = pad_sequences(sequences, max_len)
    return Documents(
        ids, lengths, torch.as_tensor(item_vectors, dtype=torch.float32), max_len=max_len
    )
