"""vectorize and read_documents (topics/vectorize.py).

Truths: counts worked out by hand on tiny texts, and scikit-learn's CountVectorizer run
with the same options (the reference library, used only here).
"""

import gzip

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from latentkit.exceptions import InvalidInputError, InvalidInputTypeError, InvalidParameterError
from latentkit.topics.vectorize import TOKEN_PATTERN, read_documents, vectorize

TEXTS = [
    "The cat sat on the mat.",
    "A cat and a dog; the dog barked 3 times.",
    "Dogs and cats, cats and dogs: 1999 was the year_of the cat.",
    "Markets fell as the dollar rose.",
    "The dollar rose; markets fell again and the cat slept.",
]


def test_default_vocabulary_by_hand():
    corpus = vectorize(TEXTS)
    # min_df=2 keeps words in >= 2 documents (cats, dog, dogs are in one each); stop words
    # (the, on, and, as, again, was, a) and tokens with digits or underscores (3, 1999,
    # year_of) never count
    assert corpus.vocabulary.tolist() == ["cat", "dollar", "fell", "markets", "rose"]
    expected = np.array([
        [1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0],
        [0, 1, 1, 1, 1],
        [1, 1, 1, 1, 1],
    ])
    np.testing.assert_array_equal(corpus.counts.toarray(), expected)
    assert corpus.counts.dtype == np.float64 and corpus.n_unknown == 0


@pytest.mark.parametrize("options", [
    {}, {"min_df": 1, "max_df": 1.0, "stop_words": None}, {"max_df": 3, "min_df": 0.3},
    {"lowercase": False, "min_df": 1}, {"token_pattern": r"(?u)\b\w+\b", "min_df": 1},
])
def test_matches_count_vectorizer(options):
    settings = dict(stop_words="english", min_df=2, max_df=0.95, lowercase=True,
                    token_pattern=TOKEN_PATTERN) | options
    reference = CountVectorizer(**settings)
    expected = reference.fit_transform(TEXTS).toarray()
    corpus = vectorize(TEXTS, **options)
    np.testing.assert_array_equal(corpus.counts.toarray(), expected)
    assert corpus.vocabulary.tolist() == reference.get_feature_names_out().tolist()


def test_max_features_keeps_the_most_frequent():
    corpus = vectorize(TEXTS, max_features=1, min_df=1)
    assert corpus.vocabulary.tolist() == ["cat"]  # 4 occurrences; no other word has 3


def test_given_vocabulary_counts_only_its_words():
    corpus = vectorize(TEXTS[:2], vocabulary=["dog", "cat", "zebra"])
    np.testing.assert_array_equal(corpus.counts.toarray(), [[0, 1, 0], [2, 1, 0]])
    assert corpus.vocabulary.tolist() == ["dog", "cat", "zebra"]
    # tokens left after stop words: cat sat mat | cat dog dog barked times
    assert corpus.n_unknown == 4  # sat, mat, barked, times


def test_no_word_left_names_the_options():
    with pytest.raises(InvalidInputError) as info:
        vectorize(["the and of", "a an the"])
    message = str(info.value)
    assert "no word is left" in message and "min_df" in message and "max_df" in message
    assert "stop_words=None" in message
    with pytest.raises(InvalidInputError, match="lower min_df"):
        vectorize(TEXTS, min_df=10)


def test_bad_options_are_parameter_errors():
    with pytest.raises(InvalidParameterError, match="stop_words"):
        vectorize(TEXTS, stop_words="klingon")
    with pytest.raises(InvalidParameterError, match="min_df"):
        vectorize(TEXTS, min_df=-1)


@pytest.mark.parametrize("texts, fragment", [
    ("one text", "not one string"),
    ([b"bytes"], "text 0 is a bytes"),
    (["fine", 3], "text 1 is a int"),
    (42, "got int"),
])
def test_texts_must_be_strings(texts, fragment):
    with pytest.raises(InvalidInputTypeError) as info:
        vectorize(texts)
    assert fragment in str(info.value)


def test_no_texts():
    with pytest.raises(InvalidInputError, match="texts is empty"):
        vectorize([])


# -- read_documents ----------------------------------------------------------------------------


def test_one_document_per_line(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_bytes("\ufeffcafé au lait\r\n\nsecond line\nlast without newline".encode())
    assert read_documents(path) == ["café au lait", "", "second line", "last without newline"]
    gz = tmp_path / "docs.txt.gz"
    gz.write_bytes(gzip.compress(b"a b\nc d\n"))
    assert read_documents(str(gz)) == ["a b", "c d"]


def test_undecodable_file_names_the_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("ok\nstill ok\nna\xefve\n".encode("latin-1"))
    with pytest.raises(InvalidInputError) as info:
        read_documents(path)
    message = str(info.value)
    assert str(path) in message and "line 3 is not valid UTF-8" in message
