"""Topic models: latent Dirichlet allocation by variational EM (batch and online) and by
collapsed Gibbs sampling, with one held-out likelihood for all three (issue 13).

    from latentkit.topics import LDA, vectorize
    from latentkit.datasets import load_ap

    ap = load_ap()
    lda = LDA(20, method="online", random_state=0).fit(ap)
    lda.top_words(10), lda.transform(ap.counts[:5]), lda.perplexity(ap.counts[-200:])
"""

from ._inputs import UnknownWordsWarning
from .lda import LDA
from .vectorize import TextCorpus, read_documents, vectorize

__all__ = ["LDA", "TextCorpus", "UnknownWordsWarning", "read_documents", "vectorize"]

from . import _registry  # noqa: E402,F401 -- the family's entry in latentkit.registry
