"""An online threshold rule: adaptive conformal inference (Gibbs & Candes, NeurIPS 2021), on the quantile level.

The threshold is the (1 - alpha_t) quantile of the recent negatives' best scores (answers without a confirmed
duplicate, a window of them). After each negative answer, err_t = 1 when it was flagged at the threshold in force
(a false alarm), and the level moves: alpha_{t+1} = alpha_t + gamma * (target - err_t). A false alarm lowers
alpha_t (a higher quantile, a higher threshold); a quiet answer raises it slowly. Gibbs & Candes show that the
long-run share of errors, (1/T) sum err_t, stays within (max(alpha_1, 1 - alpha_1) + gamma) / (gamma T) of the
target whatever the scores do: it holds under drift, at the price of a threshold that moves.

Off by default (Settings.flag_online_rule): a replay of the labelled corpus in time order decides whether it
ships by default. This object only computes; FlagWatch feeds it and reports its threshold."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnlineState:
    threshold: float
    alpha: float
    target: float
    gamma: float
    steps: int
    errors: int

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "aci", "threshold": self.threshold, "alpha": self.alpha, "target": self.target,
                "gamma": self.gamma, "negatives_seen": self.steps, "false_alarms": self.errors,
                "false_alarm_share": self.errors / self.steps if self.steps else None}


class AdaptiveThreshold:
    """alpha_{t+1} = alpha_t + gamma * (target - err_t); threshold_t = the (1 - alpha_t) quantile of the last
    `window` negative scores (the starting threshold until `warmup` of them are in)."""

    def __init__(self, target: float, start: float, gamma: float = 0.005, window: int = 1000,
                 warmup: int = 50) -> None:
        if not 0.0 < target < 1.0:
            raise ValueError("the target rate must be in (0, 1)")
        self.target = target
        self.gamma = gamma
        self.alpha = target
        self.warmup = warmup
        self._start = start
        self._threshold = start
        self._scores: deque[float] = deque(maxlen=window)
        self._steps = 0
        self._errors = 0
        self._lock = threading.Lock()

    @property
    def threshold(self) -> float:
        return self._threshold

    def _quantile(self) -> float:
        if len(self._scores) < self.warmup:
            return self._start
        if self.alpha <= 0.0:  # flag nothing seen so far
            return float(np.nextafter(max(self._scores), np.inf))
        if self.alpha >= 1.0:
            return float(min(self._scores))
        return float(np.quantile(np.asarray(self._scores), 1.0 - self.alpha, method="higher"))

    def update(self, score: float, negative: bool = True) -> float:
        """One answer's best score; `negative`: no confirmed duplicate (hits do not move the level). Returns the
        threshold for the next answer."""
        with self._lock:
            if not negative:
                return self._threshold
            err = 1.0 if score >= self._threshold else 0.0
            self._steps += 1
            self._errors += int(err)
            self.alpha += self.gamma * (self.target - err)
            self._scores.append(score)
            self._threshold = self._quantile()
            return self._threshold

    def state(self) -> OnlineState:
        with self._lock:
            return OnlineState(self._threshold, self.alpha, self.target, self.gamma, self._steps, self._errors)
