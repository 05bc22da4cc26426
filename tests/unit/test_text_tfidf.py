"""The TF-IDF text model's features and its ONNX graph: byte n-grams and whole-word sequences are
matched by the standard ``TfIdfVectorizer`` operator exactly as scikit-learn counted them in training,
for any script and for the smallest inputs."""

from __future__ import annotations

import numpy as np
import pytest

from aidetect.data.text.encode import model_string
from aidetect.errors import ConfigError
from aidetect.model.text import runtime, tfidf
from aidetect.model.text.config import TextTrainConfig

HUMAN = [
    "the cat sat on the mat lol",
    "idk why the bus was late again",
    "my aunt cooked some bread, it was ok",
    "our team lost the game (again!)",
    "kinda weird tbh but the garden looks fine",
]
AI = [
    "Certainly! The cat sat on the mat, which is a testament to comfort.",
    "It is important to note that the bus was late, which is crucial overall.",
    "Moreover, my aunt seamlessly cooked some bread, a comprehensive delight.",
    "In conclusion, the team lost the game, which is crucial to delve into.",
    "Furthermore, the garden looks fine, a testament to comprehensive care.",
]
# Texts the model never saw: other scripts, emoji, the smallest and largest inputs.
PROBES = [
    "",
    "a",
    " ",
    "ok",
    "Это важно отметить: команда проиграла игру.",
    "这是一个测试。模型应该给出概率。",
    "هذا نص عربي قصير للاختبار",
    "नमस्ते दुनिया, यह एक परीक्षण है",
    "emoji 🙂🙂 and   runs\n\nof   whitespace",
    "Moreover, " * 600,  # longer than max_len
    "the cat the cat the cat",
]


def _fit(words: int, max_len: int = 4096) -> tfidf.TfidfModel:
    texts = (HUMAN + AI) * 4
    y = np.array(([0] * len(HUMAN) + [1] * len(AI)) * 4)
    return tfidf.fit(texts, y, tfidf.TfidfParams(words=words, min_df=1, C=10.0, max_len=max_len))


def test_word_grams_are_the_space_bracketed_sequences_the_operator_matches() -> None:
    s = model_string("Start the cat\nsat   on the mat end", 4096)
    assert s == "Start the cat\nsat on the mat end"
    got = tfidf.word_grams(s, shortest=1, longest=64)
    # "Start" and "end" touch the text's edges, "cat\nsat" is one piece (a newline is not a space)
    assert " the " in got and " cat\nsat " in got and " on the " in got
    assert not any(g.strip() in {"Start", "end"} for g in got)
    assert all(g.startswith(" ") and g.endswith(" ") for g in got)
    assert tfidf.word_grams(s, shortest=6, longest=8) == [" on the "]
    assert tfidf.word_grams("one", 1, 64) == [] and tfidf.word_grams("", 1, 64) == []


def test_pool_offsets_skip_lengths_without_ngrams() -> None:
    pool, counts, indexes, longest = tfidf._pool(["a", "b", " xyz "])
    assert longest == 5
    assert counts == [0, 2, 2, 2, 2]  # offsets in ids: two 1-grams, then nothing until the 5-gram
    assert pool == [ord("a") + 1, ord("b") + 1, *(b + 1 for b in b" xyz ")]
    assert indexes == [0, 1, 2]


@pytest.mark.parametrize("words", [0, 200])
def test_onnx_graph_matches_sklearn_on_any_script_and_tiny_inputs(words: int) -> None:
    model = _fit(words)
    grams, idf = model.vocabulary()
    assert len(grams) == len(idf) == len(set(grams))  # one column per byte sequence
    if words:
        assert any(len(g) > model.params.ngram_max for g in grams)  # word features made it in
    texts = HUMAN + AI + PROBES
    ref = tfidf.predict_sklearn(model, texts, 2)
    sess = runtime.session(tfidf.to_onnx(model, 2).SerializeToString())
    got = runtime.probabilities(sess, texts, model.params.max_len)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert np.all(np.isfinite(got)) and np.allclose(got.sum(1), 1.0, atol=1e-6)
    # batch composition does not change a text's answer (0 padding matches no n-gram)
    alone = np.concatenate([runtime.probabilities(sess, [t], model.params.max_len) for t in texts])
    np.testing.assert_allclose(alone, got, atol=1e-6)


def test_word_features_separate_the_toy_registers() -> None:
    model = _fit(200)
    sess = runtime.session(tfidf.to_onnx(model, 2).SerializeToString())
    probes = ["the dog sat on the mat lol", "Moreover, which is crucial overall."]
    p = runtime.probabilities(sess, probes, 4096)
    assert p[0, 1] < 0.5 < p[1, 1]


@pytest.mark.parametrize(
    ("tfidf_over", "message"),
    [
        ({"words": -1}, "words"),
        ({"words": 100, "word_max_bytes": 5}, "word_max_bytes"),
        ({"ngram_max": 0}, "ngram_max"),
        ({"class_weight": "heavy"}, "class_weight"),
    ],
)
def test_bad_tfidf_settings_are_named(tfidf_over: dict[str, int | str], message: str) -> None:
    cfg = TextTrainConfig(tfidf=tfidf.TfidfParams(**tfidf_over))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        cfg.validate()
