"""Byte n-gram (+ optional whole-word) TF-IDF + logistic regression, exported as a plain ONNX graph over
byte ids.

scikit-learn fits the vocabulary, the IDF weights and the linear model on :func:`model_string` (the
latin-1 view of the UTF-8 bytes): byte n-grams (``analyzer="char"``) and, when ``words > 0``, whole
space-delimited words and word pairs (:func:`word_grams`), each a byte sequence too. The ONNX graph
recomputes the same features with the standard ``TfIdfVectorizer`` operator on the byte ids (binary TF x
IDF over the union of both vocabularies, one L2 norm) and applies the linear model, so serving needs
neither scikit-learn nor a tokenizer, and the two agree to float32 rounding.

Why words as byte sequences: the operator matches any id sequence, so ``" word "`` (the word with the
spaces around it) is a feature the graph finds without a tokenizer, a locale or a second input; the
training analyzer produces exactly the sequences the operator would match (a word at the very start or
end of the text, or next to a newline, is not bracketed by spaces and so is not counted, in both).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from aidetect.data.text.encode import INPUT_NAME, OUTPUT_NAME, model_string

OPSET = 17
IR_VERSION = 8  # onnxruntime reads it; onnx writes a newer one by default


@dataclass
class TfidfParams:
    ngram_max: int = 5
    min_df: int = 3
    max_features: int = 200_000
    words: int = 100_000  # most frequent whole words / word pairs added as features (0: byte n-grams only)
    word_max_bytes: int = 24  # longest word feature, spaces included (bounds the operator's n)
    C: float = 10.0
    max_len: int = 4096
    class_weight: str = ""  # "" or "balanced"


@dataclass
class TfidfModel:
    """The fitted featurizers (byte n-grams, words) and the linear model."""

    params: TfidfParams
    chars: Any
    words: Any | None
    clf: Any

    def features(self, texts: list[str]) -> Any:
        """L2-normalised binary TF x IDF rows ``[N, V]`` (sparse) of the texts."""
        import scipy.sparse as sp
        from sklearn.preprocessing import normalize

        strings = [model_string(t, self.params.max_len) for t in texts]
        parts = [self.chars.transform(strings)]
        if self.words is not None:
            parts.append(self.words.transform(strings))
        return normalize(sp.hstack(parts, format="csr", dtype=np.float32))

    def vocabulary(self) -> tuple[list[str], np.ndarray]:
        """Every feature's byte sequence (latin-1 string) in column order, and its IDF weight."""
        vecs = [v for v in (self.chars, self.words) if v is not None]
        grams: list[str] = []
        for v in vecs:
            grams.extend(g for g, _ in sorted(v.vocabulary_.items(), key=lambda kv: kv[1]))
        return grams, np.concatenate([v.idf_ for v in vecs]).astype(np.float32)


def word_grams(s: str, shortest: int, longest: int) -> list[str]:
    """``" w "`` and ``" w1 w2 "`` for words bracketed by single spaces (what the ONNX operator matches).

    Sequences up to ``shortest - 1`` bytes are left out: they are byte n-grams already."""
    words = s.split(" ")[1:-1]  # the first and last piece are not bracketed by spaces
    grams = [f" {w} " for w in words] + [f" {a} {b} " for a, b in itertools.pairwise(words)]
    return [g for g in grams if shortest <= len(g) <= longest]


def _vectorizer(params: TfidfParams, **kw: Any) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # binary TF x IDF: one pass of the ONNX TfIdfVectorizer operator (mode IDF); the norm comes after
    # both vocabularies are joined
    return TfidfVectorizer(
        lowercase=False, min_df=params.min_df, binary=True, norm=None, dtype=np.float32, **kw
    )


def fit(texts: list[str], targets: np.ndarray, params: TfidfParams) -> TfidfModel:
    """Fit the vocabularies, IDF weights and the linear model on the training texts."""
    from sklearn.linear_model import LogisticRegression

    strings = [model_string(t, params.max_len) for t in texts]
    chars = _vectorizer(
        params, analyzer="char", ngram_range=(1, params.ngram_max), max_features=params.max_features
    ).fit(strings)
    words = None
    if params.words > 0:
        grams = partial(word_grams, shortest=params.ngram_max + 1, longest=params.word_max_bytes)
        words = _vectorizer(params, analyzer=grams, max_features=params.words).fit(strings)
    model = TfidfModel(params, chars, words, None)
    clf = LogisticRegression(C=params.C, max_iter=3000, class_weight=params.class_weight or None)
    model.clf = clf.fit(model.features(texts), targets)
    return model


def predict_sklearn(model: TfidfModel, texts: list[str], num_classes: int) -> np.ndarray:
    """Reference probabilities ``[N, C]`` (for the parity check of the exported graph)."""
    p = model.clf.predict_proba(model.features(texts))
    out = np.zeros((len(texts), num_classes), dtype=np.float32)
    out[:, model.clf.classes_] = p
    return out


def _pool(grams: list[str]) -> tuple[list[int], list[int], list[int], int]:
    """TfIdfVectorizer attributes: pool ids grouped by length, start offsets (in ids) per length
    (1..longest; a length without n-grams repeats the offset), output column per pooled n-gram; and the
    longest length."""
    longest = max(map(len, grams), default=1)
    by_len: dict[int, list[tuple[str, int]]] = {}
    for column, g in enumerate(grams):
        by_len.setdefault(len(g), []).append((g, column))
    pool: list[int] = []
    counts: list[int] = []
    indexes: list[int] = []
    for n in range(1, longest + 1):
        counts.append(len(pool))  # offset in pool items
        for gram, column in sorted(by_len.get(n, [])):
            pool.extend(b + 1 for b in gram.encode("latin-1"))
            indexes.append(column)
    return pool, counts, indexes, longest


def to_onnx(model: TfidfModel, num_classes: int) -> onnx.ModelProto:
    """The graph ``ids [N, L] -> probabilities [N, C]``.

    Binary TF times IDF is exactly the ``TfIdfVectorizer`` operator's ``IDF`` mode, so the features take
    one pass; the L2 norm and the linear model are a reduction and a matrix product over them (the
    normalisation is applied to the logits, ``(w @ coef) / ||w||``, not to the ``[N, V]`` features)."""
    grams, idf = model.vocabulary()
    pool, counts, indexes, longest = _pool(grams)
    clf = model.clf
    rows = num_classes if clf.coef_.shape[0] > 1 else 1
    coef = np.zeros((rows, len(grams)), np.float32)
    coef[:] = clf.coef_
    inits = [
        numpy_helper.from_array(coef.T.copy(), "coef"),
        numpy_helper.from_array(clf.intercept_.astype(np.float32), "intercept"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(1e-24, np.float32), "eps"),
    ]
    nodes = [
        helper.make_node(
            "TfIdfVectorizer",
            [INPUT_NAME],
            ["w"],
            mode="IDF",
            min_gram_length=1,
            max_gram_length=longest,
            max_skip_count=0,
            ngram_counts=counts,
            ngram_indexes=indexes,
            pool_int64s=pool,
            weights=idf[indexes].tolist(),  # per pooled n-gram, in pool order
        ),
        helper.make_node("ReduceSumSquare", ["w"], ["ss"], axes=[1], keepdims=1),  # opset 17: attribute
        helper.make_node("MatMul", ["w", "coef"], ["dot"]),
        helper.make_node("Max", ["ss", "eps"], ["ss_safe"]),
        helper.make_node("Sqrt", ["ss_safe"], ["norm"]),
        helper.make_node("Div", ["dot", "norm"], ["lin"]),
        helper.make_node("Add", ["lin", "intercept"], ["logits"]),
    ]
    if coef.shape[0] == 1:
        nodes += [
            helper.make_node("Sigmoid", ["logits"], ["p1"]),
            helper.make_node("Sub", ["one", "p1"], ["p0"]),
            helper.make_node("Concat", ["p0", "p1"], [OUTPUT_NAME], axis=1),
        ]
    else:
        nodes.append(helper.make_node("Softmax", ["logits"], [OUTPUT_NAME], axis=1))
    graph = helper.make_graph(
        nodes,
        "tfidf_lr",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.INT64, ["N", "L"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", num_classes])],
        inits,
    )
    model_proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="aidetect", ir_version=IR_VERSION
    )
    onnx.checker.check_model(model_proto)
    return model_proto
