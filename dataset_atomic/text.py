"""Text helpers for the converters: title cleaning, tokenising, bag-of-words,
dense document vectors (TF-IDF -> LSI, Doc2Vec).

Everything here is deterministic across Python processes: no set/hash order is
used for anything that reaches the output, gensim's LsiModel takes an explicit
`random_seed`, and Doc2Vec runs with one worker thread and a fixed `seed`
(gensim 4 seeds its vectors with numpy generators, not with `hash()`).
"""

from __future__ import annotations

import csv
import html
import logging
import re
from typing import Iterable, Sequence

import numpy as np
from gensim.corpora import Dictionary
from gensim.matutils import corpus2dense
from gensim.models import Doc2Vec, LsiModel, TfidfModel
from gensim.models.callbacks import CallbackAny2Vec
from gensim.models.doc2vec import TaggedDocument
from gensim.parsing.preprocessing import STOPWORDS
from gensim.utils import dict_from_corpus

logging.getLogger("gensim").setLevel(logging.WARNING)  # its INFO lines flood RecBole's log

BowDoc = list[tuple[int, float]]

# ---------------------------------------------------------------- titles
_C1_CONTROLS = re.compile("[\x80-\x9f]")
_NON_ASCII_RUN = re.compile(r"([^\x00-\x7f]+)( ?)")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_LATEX_MARKUP = re.compile(r"[{}\\]")
_SPACES = re.compile(r"\s+")


def unquote_csv(text: str) -> str:
    """`"a ""b"" c"` -> `a "b" c` (titles exported from a CSV kept their quoting)."""
    if len(text) > 1 and text.startswith('"') and text.endswith('"'):
        return next(csv.reader([text]))[0]
    return text


def _cp1252_bytes(text: str) -> bytes:
    """Encode like cp1252, but pass through the 5 bytes cp1252 leaves undefined."""
    out = bytearray()
    for char in text:
        try:
            out += char.encode("cp1252")
        except UnicodeEncodeError:
            if ord(char) > 0xFF:
                raise
            out.append(ord(char))
    return bytes(out)


def _redecode_run(match: re.Match) -> str:
    """Undo one UTF-8-read-as-cp1252 layer on a run of non-ASCII characters.

    A trailing plain space may be a no-break space (byte A0) that was lost:
    `â€ ` is `†` (E2 80 A0), `Â ` is a no-break space.
    """
    run, space = match.group(1), match.group(2)
    candidates = [(run + "\xa0", "")] if space else []
    candidates.append((run, space))
    for chars, rest in candidates:
        try:
            return _cp1252_bytes(chars).decode("utf8") + rest
        except (UnicodeError, ValueError):
            continue
    return match.group(0)


def fix_mojibake(text: str, max_layers: int = 3) -> str:
    """Repair UTF-8 text that was decoded as cp1252, possibly twice (`Ã¢Â€Â“`)."""
    for _ in range(max_layers):
        fixed = _NON_ASCII_RUN.sub(_redecode_run, text)
        if fixed == text:
            break
        text = fixed
    # C1 control characters are cp1252 punctuation read as latin-1 (\x93 -> “)
    return _C1_CONTROLS.sub(lambda m: _cp1252_bytes(m.group()).decode("cp1252", "ignore"), text)


def clean_title(raw: str) -> str:
    """CSV quoting, HTML entities/tags, mojibake, LaTeX braces, odd spaces."""
    text = fix_mojibake(unquote_csv(raw.rstrip("\r\n")))  # before strip: `â€ ` is `†`
    text = html.unescape(text)
    text = _HTML_TAG.sub("", text)
    text = _LATEX_MARKUP.sub("", text)
    return _SPACES.sub(" ", text).strip()


# ---------------------------------------------------------------- tokens
_TOKEN = re.compile(r"[^\W_]+")  # runs of unicode letters/digits


def tokenize(text: str) -> list[str]:
    """Lowercased letter/digit tokens, no stop words, no 1-char or all-digit tokens."""
    return [
        tok
        for tok in _TOKEN.findall(text.lower())
        if len(tok) > 1 and not tok.isdigit() and tok not in STOPWORDS
    ]


_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letter/digit runs, inner apostrophes kept


def tokenize_words(text: str) -> list[str]:
    """Every word of running text (reviews), lowercased, in order: runs of letters/digits,
    an apostrophe inside a word kept (`don't`, `player's`; `’` counts as `'`). Unlike
    `tokenize`, no stop-word, length or digit filter: `not`, `a`, `5` stay."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def safe_token(word: str) -> str:
    """A vocabulary word usable as a RecBole token: no whitespace, no quote char."""
    return re.sub(r'[\s"]', "_", word)


# ---------------------------------------------------------------- bag of words
def build_bow(
    docs: Sequence[Sequence[str]], no_below: int, no_above: float, keep_n: int
) -> tuple[Dictionary, list[BowDoc]]:
    """Dictionary + filter_extremes, then each document as (word id, count)."""
    dictionary = Dictionary(docs)
    dictionary.filter_extremes(no_below=no_below, no_above=no_above, keep_n=keep_n)
    return dictionary, [dictionary.doc2bow(doc) for doc in docs]


def bow_by_count(doc: BowDoc) -> BowDoc:
    """Most frequent words first (ties by word id): a truncated sequence keeps the top words."""
    return sorted(doc, key=lambda pair: (-pair[1], pair[0]))


def bow_to_words(doc: BowDoc, id2word) -> list[str]:
    """Expand a bag of words into a word list, each word repeated by its count."""
    return [id2word[word_id] for word_id, count in doc for _ in range(int(count))]


# ---------------------------------------------------------------- dense vectors
def lsi_vectors(
    corpus: list[BowDoc], dim: int = 100, seed: int = 0, report=None, every: int = 5000
) -> np.ndarray:
    """TF-IDF weighting, then a `dim`-topic LSI; (n_docs, dim) float32, zeros for empty docs.
    ``report(text)`` hears when the SVD is done and after every ``every`` documents projected."""
    report = report or (lambda text: None)
    tfidf = TfidfModel(corpus, normalize=True)
    weighted = [tfidf[doc] for doc in corpus]
    lsi = LsiModel(
        weighted,
        id2word=dict_from_corpus(weighted),  # what gensim assumes without one, minus its warning
        num_topics=dim,
        chunksize=len(corpus) + 1,
        random_seed=seed,
    )
    report(f"LSI: SVD done, projecting {len(weighted)} documents")
    projected = []
    for doc in weighted:
        projected.append(lsi[doc])
        if len(projected) % every == 0:
            report(f"LSI: {len(projected)}/{len(weighted)} documents projected")
    vectors = corpus2dense(projected, num_terms=dim, num_docs=len(corpus)).T
    return np.ascontiguousarray(vectors, dtype=np.float32)


class EpochReport(CallbackAny2Vec):
    """Calls ``report("Doc2Vec", done, total)`` when training starts and after each epoch."""

    def __init__(self, report, epochs):
        self.report, self.epochs, self.done = report, epochs, 0

    def on_train_begin(self, model):
        self.report("Doc2Vec", 0, self.epochs)

    def on_epoch_end(self, model):
        self.done += 1
        self.report("Doc2Vec", self.done, self.epochs)


def train_doc2vec(docs, dim, epochs, min_count, window, seed, word_vectors=True, report=None):
    """PV-DBOW Doc2Vec (Le & Mikolov 2014), with skip-gram word vectors trained alongside
    (``word_vectors``; Lau & Baldwin 2016), one worker thread so the same seed gives the
    same vectors; ``report(stage, done, total)`` hears of each epoch. Returns the gensim model."""
    tagged = [TaggedDocument(list(doc), [i]) for i, doc in enumerate(docs)]
    model = Doc2Vec(
        vector_size=dim,
        dm=0,
        dbow_words=int(word_vectors),
        window=window,
        min_count=min_count,
        negative=5,
        hs=0,
        sample=1e-3,
        epochs=epochs,
        workers=1,
        seed=seed,
    )
    model.build_vocab(tagged)
    model.train(
        tagged,
        total_examples=len(tagged),
        epochs=epochs,
        callbacks=[EpochReport(report, epochs)] if report else (),
    )
    return model


def doc2vec_vectors(
    docs: Sequence[Sequence[str]], dim: int = 100, seed: int = 0, epochs: int = 10, report=None
) -> np.ndarray:
    """Document vectors of PV-DBOW Doc2Vec (word order does not matter; no word vectors).

    Returns (n_docs, dim) float32; empty documents get zero vectors (never trained).
    """
    model = train_doc2vec(
        docs, dim, epochs, min_count=1, window=5, seed=seed, word_vectors=False, report=report
    )
    vectors = np.array([model.dv[i] for i in range(len(docs))], dtype=np.float32)
    vectors[[len(doc) == 0 for doc in docs]] = 0.0
    return vectors


def format_floats(values: Iterable[float]) -> str:
    """Space-separated compact floats (`%.6g`)."""
    return " ".join("%.6g" % value for value in values)
