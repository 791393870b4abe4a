"""Exercise 04: top-k and top-p filters (lesson 06, sampling).

Write the two filters below in NumPy, then grade them:

    minfer exercises check 04

Both take one row of logits and return a new row of the same shape, [n_vocab] -> [n_vocab]:
the tokens they keep have their logits unchanged, the tokens they remove are set to -inf
(probability exactly 0 after the softmax). Do not modify the input array.

1. `top_k_filter(logits, k)`: keep the k largest logits. k = 0 means off (return the logits
   as they are), and so does k >= n_vocab. A token tied with the k-th largest logit is kept
   too (as Hugging Face does), so ties can keep more than k tokens.

2. `top_p_filter(logits, p)`: nucleus sampling. Keep the smallest set of most likely tokens
   whose probabilities (softmax of the logits) add up to at least p, and remove the rest.
   p = 1 (or more) means off. The most likely token is always kept.
   The exact rule, as Hugging Face and minfer apply it: sort from least to most likely (a
   stable sort: between two equal logits the lower token id comes first), take the cumulative
   probability, remove every token whose cumulative probability is <= 1 - p, except the most
   likely one. Entries that are already -inf (probability 0) stay -inf.

The checks try several k and p, ties, the edge cases, and logits that already hold -inf.
"""

import numpy as np


def top_k_filter(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep the k largest logits (and any tied with the k-th), set the others to -inf. 0 = off.

    logits: [n_vocab] -> [n_vocab]
    """
    raise NotImplementedError("write me: top_k_filter")


def top_p_filter(logits: np.ndarray, p: float) -> np.ndarray:
    """Keep the most likely tokens holding probability p, set the others to -inf. 1 = off.

    logits: [n_vocab] -> [n_vocab]
    """
    raise NotImplementedError("write me: top_p_filter")
