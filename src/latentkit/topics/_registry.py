"""The topic family's entry in `latentkit.registry`: `latentkit fit lda`, with its own
reader for DATA (the bundled AP corpus, a text file of one document per line, a scipy
`.npz` count matrix), what the model is given, and the summary rows (held-out perplexity
instead of BIC: an LDA fit's objective is a bound)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..registry import ModelSpec, register
from .demo import ap_lda
from .figures import lda_figures
from .lda import LDA

AP_NOTE = "the AP corpus: 2,246 news articles over a 10,473-word vocabulary"


def _data(counts, vocabulary, name: str, bundled: bool = False):
    from ..tables import Data

    return Data(X=counts, name=name, bundled=bundled,
                columns=None if vocabulary is None else [str(w) for w in vocabulary])


def _is_scipy_npz(path: Path) -> bool:
    with np.load(path, allow_pickle=False) as npz:
        return {"format", "shape", "indptr", "indices", "data"} <= set(npz.files)


def read_corpus(source: str, model):
    """DATA as a corpus (Data with X a CSR count matrix and the vocabulary as columns), or
    None for a table the table reader handles (a CSV of counts, one column per word).

    "ap": the bundled AP corpus; *.txt / *.txt.gz: one document per line, vectorized with
    `vectorize`'s defaults (when fitting) or with the model's vocabulary (unknown words
    dropped and counted in a warning); a scipy-format *.npz: its count matrix.
    """
    from .vectorize import read_documents, vectorize

    path = Path(source).expanduser()
    if source == "ap" and not path.exists():
        from ..datasets import load_ap

        corpus = load_ap()
        return _data(corpus.counts, corpus.vocabulary, "ap", bundled=True)
    name = path.name
    if name.endswith((".txt", ".txt.gz")) and path.is_file():
        vocabulary = None if model is None else model.vocabulary_
        if model is not None and vocabulary is None:
            from ..exceptions import InvalidInputError

            raise InvalidInputError(f"the model was fitted on bare counts: it has no "
                                    f"vocabulary to count the words of {name} with.")
        corpus = vectorize(read_documents(path), vocabulary=vocabulary)
        return _data(corpus.counts, corpus.vocabulary, name)
    if name.endswith(".npz") and path.is_file() and _is_scipy_npz(path):
        return _data(sp.load_npz(path).tocsr(), None, name)
    return None


def corpus_input(data, named: bool):
    """What LDA is given: the counts with the vocabulary when DATA names its columns."""
    from .vectorize import TextCorpus

    counts = data.X if sp.issparse(data.X) else sp.csr_matrix(np.asarray(data.X))
    if data.columns is None:
        return counts
    return TextCorpus(counts, np.asarray(data.columns, dtype=str))


def corpus_metrics(model, data, X) -> list:
    """documents, tokens, the mean ELBO per document (a bound) and the perplexity by
    document completion (θ from half of each document's tokens, the other half scored)."""
    counts = model._documents(X, reset=False)
    return [("rows", "documents", int(counts.shape[0])),
            ("tokens", "tokens", int(counts.sum())),
            ("mean_elbo", "mean ELBO per document (a lower bound)", float(model.score(X))),
            ("perplexity", "perplexity (document completion)", float(model.perplexity(X)))]


def topic_table(model, X) -> pd.DataFrame:
    """`latentkit predict`: each document's most prevalent topic and its proportions."""
    proportions = np.asarray(model.transform(X), dtype=np.float64)
    table = pd.DataFrame({"topic": proportions.argmax(axis=1)})
    for k in range(proportions.shape[1]):
        table[f"topic_{k}"] = proportions[:, k]
    return table


def top_words_table(job) -> list:
    """The page's table: each topic's prevalence in DATA and its ten top words."""
    model = job.model
    prevalence = np.asarray(model.transform(corpus_input(job.data, True))).mean(axis=0)
    rows = [{"topic": k, "prevalence": round(float(prevalence[k]), 4),
             "top words": " ".join(words)} for k, words in enumerate(model.top_words(10))]
    return [("topics: prevalence in DATA and top words", rows)]


def lda_example(rng: np.random.Generator):
    """A planted corpus: 3 topics over 30 words, 200 documents of ~40 tokens."""
    from ..datasets import make_lda_corpus

    corpus = make_lda_corpus(200, 30, 3, doc_length=40, alpha=0.3, eta=0.1, random_state=rng)
    return {"n_topics": 3, "random_state": 0}, corpus.counts.toarray()


register(ModelSpec(
    "lda", LDA, "latent Dirichlet allocation (topics of word counts): --method batch, online "
    "or gibbs; DATA a text file of one document per line, a .npz count matrix or ap",
    "ap", AP_NOTE, size_param="n_topics", size_label="K (topics)", default_size=10,
    summary_params=("method",), read_data=read_corpus, model_input=corpus_input,
    metrics=corpus_metrics, predict_table=topic_table, tables=top_words_table,
    figures=lda_figures, demo=ap_lda, example=lda_example))
