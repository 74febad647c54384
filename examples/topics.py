"""Topic models in latentkit: LDA by batch variational EM, online variational Bayes and
collapsed Gibbs sampling, evaluated by one held-out estimator.

Run: python examples/topics.py
"""


from latentkit import load
from latentkit.datasets import make_lda_corpus
from latentkit.topics import LDA, vectorize

# A planted corpus: 10 topics over 1,000 words; the true topics give the floor perplexity.
corpus = make_lda_corpus(1_200, 1_000, 10, doc_length=100, alpha=0.1, eta=0.05,
                         random_state=0)
train, test = corpus.counts[:1_000], corpus.counts[1_000:]

# Three ways to learn it, one interface; every held-out number is the same code for all.
for method, sweeps in (("batch", 50), ("online", 10), ("gibbs", 200)):
    lda = LDA(10, method=method, doc_topic_prior=0.1, topic_word_prior=0.05,
              max_iter=sweeps, random_state=0).fit(train)
    print(f"{method:>6}: held-out perplexity {lda.perplexity(test):7.1f} "
          f"(document completion), {lda.n_iter_} iterations")

# Raw texts: vectorized with scikit-learn's CountVectorizer; the vocabulary travels with
# the model, unknown words at transform time are ignored (and counted in a warning).
texts = ["the game went to overtime and the home team won the game",
         "the court heard the appeal and the judge ruled for the defendant",
         "stocks fell as the market priced a rate rise by the central bank",
         "the coach praised the team after the season opener",
         "the jury reached a verdict after the trial",
         "the bank raised its rate as the dollar gained against the market"] * 20
docs = vectorize(texts, min_df=1)
lda = LDA(3, method="gibbs", max_iter=100, random_state=0).fit(docs)
for k, words in enumerate(lda.top_words(4)):
    print(f"topic {k}: {' '.join(words)}")
print("proportions of a new text:", lda.transform(["the judge and the jury"]).round(2))

# Safe persistence: the vocabulary and the Gibbs chain are saved with the model.
lda.save("lda.npz")
assert load("lda.npz").top_words(4) == lda.top_words(4)
