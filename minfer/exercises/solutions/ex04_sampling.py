"""Exercise 04, reference solution: top-k and top-p filters."""

import numpy as np


def top_k_filter(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep the k largest logits (and any tied with the k-th), set the others to -inf. 0 = off.

    logits: [n_vocab] -> [n_vocab]
    """
    if k == 0 or k >= len(logits):
        return logits
    kth = np.sort(logits)[-k]  # the k-th largest logit
    return np.where(logits >= kth, logits, -np.inf)  # [n_vocab]; ties with the k-th stay


def top_p_filter(logits: np.ndarray, p: float) -> np.ndarray:
    """Keep the most likely tokens holding probability p, set the others to -inf. 1 = off.

    logits: [n_vocab] -> [n_vocab]
    """
    if p >= 1:
        return logits
    probs = np.exp(logits - logits.max())  # [n_vocab]
    probs /= probs.sum()
    order = np.argsort(logits, kind="stable")  # [n_vocab] token ids, least likely first
    remove_sorted = np.cumsum(probs[order]) <= 1 - p  # [n_vocab] the tail holding <= 1 - p
    remove_sorted[-1] = False  # the most likely token always stays
    remove = np.zeros(len(logits), dtype=bool)
    remove[order] = remove_sorted  # back to token order
    return np.where(remove, -np.inf, logits)  # [n_vocab]
