"""Where the scores of normal rows end: a threshold from the validation scores, by one of three strategies.

budget: the (1 - alert_budget) quantile, so that share of rows is flagged. quantile: a quantile chosen directly.
pot (peaks over threshold, Siffer et al., 2017): the excesses over a high quantile u follow a generalised Pareto
distribution; fitted by maximum likelihood, it extrapolates the score a normal row exceeds with probability
``risk``, beyond the rows seen: z = u + sigma / xi * ((risk * n / n_excess) ** -xi - 1).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from lamina.config import AnomalyConfig

log = logging.getLogger("lamina")
MIN_EXCESSES = 10


def threshold(scores: np.ndarray, config: AnomalyConfig) -> float:
    if config.threshold == "budget":
        return float(np.quantile(scores, 1 - config.alert_budget))
    if config.threshold == "quantile":
        return float(np.quantile(scores, config.quantile))
    return pot(scores, config.pot_level, config.pot_risk)


def pot(scores: np.ndarray, level: float, risk: float) -> float:
    from scipy.stats import genpareto

    u = float(np.quantile(scores, level))
    excess = scores[scores > u] - u
    if len(excess) < MIN_EXCESSES:
        log.warning("threshold pot: %d scores above the %.3g quantile (need %d); using the quantile %.4g instead",
                    len(excess), level, MIN_EXCESSES, 1 - risk)
        return float(np.quantile(scores, 1 - risk))
    xi, _, sigma = genpareto.fit(excess, floc=0.0)
    ratio = risk * len(scores) / len(excess)
    if abs(xi) < 1e-6:
        return u - sigma * math.log(ratio)
    return float(u + sigma / xi * (ratio ** -xi - 1))
