"""Byte n-gram TF-IDF + logistic regression, exported as a plain ONNX graph over byte ids.

scikit-learn fits the vocabulary (``analyzer="char"`` on :func:`model_string`, i.e. byte n-grams), the
IDF weights and the linear model; the ONNX graph recomputes the same features with the standard
``TfIdfVectorizer`` operator on the byte ids (binary TF x IDF, L2 norm) and applies the linear model,
so serving needs neither scikit-learn nor a tokenizer, and the two agree to float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from aidetect.data.text.encode import INPUT_NAME, OUTPUT_NAME, model_string

OPSET = 17
IR_VERSION = 8  # onnxruntime reads it; onnx writes a newer one by default


@dataclass
class TfidfParams:
    ngram_max: int = 4
    min_df: int = 3
    max_features: int = 200_000
    C: float = 10.0
    max_len: int = 4096
    class_weight: str = ""  # "" or "balanced"


def fit(texts: list[str], targets: np.ndarray, params: TfidfParams) -> tuple[Any, Any]:
    """Fit the vectorizer and the linear model on the training texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(
        analyzer="char",
        lowercase=False,
        ngram_range=(1, params.ngram_max),
        min_df=params.min_df,
        max_features=params.max_features,
        binary=True,  # binary TF x IDF: one pass of the ONNX TfIdfVectorizer operator (mode IDF)
        dtype=np.float32,
    )
    x = vec.fit_transform([model_string(t, params.max_len) for t in texts])
    clf = LogisticRegression(C=params.C, max_iter=3000, class_weight=params.class_weight or None)
    clf.fit(x, targets)
    return vec, clf


def predict_sklearn(vec: Any, clf: Any, texts: list[str], max_len: int, num_classes: int) -> np.ndarray:
    """Reference probabilities ``[N, C]`` (for the parity check of the exported graph)."""
    p = clf.predict_proba(vec.transform([model_string(t, max_len) for t in texts]))
    out = np.zeros((len(texts), num_classes), dtype=np.float32)
    out[:, clf.classes_] = p
    return out


def _pool(vocabulary: dict[str, int], ngram_max: int) -> tuple[list[int], list[int], list[int]]:
    """TfIdfVectorizer attributes: pool ids grouped by n, start offsets per n, output column per n-gram."""
    pool: list[int] = []
    counts: list[int] = []
    indexes: list[int] = []
    for n in range(1, ngram_max + 1):
        counts.append(len(pool))
        for gram, column in sorted((g, c) for g, c in vocabulary.items() if len(g) == n):
            pool.extend(b + 1 for b in gram.encode("latin-1"))
            indexes.append(column)
    return pool, counts, indexes


def to_onnx(vec: Any, clf: Any, num_classes: int, ngram_max: int) -> onnx.ModelProto:
    """The graph ``ids [N, L] -> probabilities [N, C]``.

    Binary TF times IDF is exactly the ``TfIdfVectorizer`` operator's ``IDF`` mode, so the features take
    one pass; the L2 norm and the linear model are a reduction and a matrix product over them (the
    normalisation is applied to the logits, ``(w @ coef) / ||w||``, not to the ``[N, V]`` features)."""
    pool, counts, indexes = _pool(vec.vocabulary_, ngram_max)
    width = len(vec.vocabulary_)
    rows = num_classes if clf.coef_.shape[0] > 1 else 1
    coef = np.zeros((rows, width), np.float32)
    coef[:] = clf.coef_
    weights = np.zeros(len(indexes), np.float32)
    weights[:] = vec.idf_.astype(np.float32)[indexes]  # per pool n-gram, in pool order
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
            max_gram_length=ngram_max,
            max_skip_count=0,
            ngram_counts=counts,
            ngram_indexes=indexes,
            pool_int64s=pool,
            weights=weights.tolist(),
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
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="aidetect", ir_version=IR_VERSION
    )
    onnx.checker.check_model(model)
    return model
