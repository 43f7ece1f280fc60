"""The tune budget (``--time``): when the search must end, whether a trial may start, how long it may train.

Wall-clock seconds (``time.time``), so processes and machines that join one study agree on the deadline. The
search leaves room before the deadline for the best model's report; whether a trial may start uses the study's
own estimates: of a trial, the median duration of its finished trials; of the report, the seconds it took in an
earlier session of the study (else a share of the budget, at least ``REPORT_SECONDS``: its figures cost seconds
whatever the budget).

>>> clock = Deadline(start=0.0, total=200.0, now=lambda: 10.0)
>>> clock.search_end(), clock.may_start(8.0)
(190.0, True)
>>> Deadline(0.0, 200.0, now=lambda: 185.0).may_start(8.0)  # 8 more seconds would end past 190
False
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna

REPORT_SHARE, REPORT_SECONDS = 0.03, 10.0  # held back for the best model's report until a session has timed it


def trial_seconds(study: optuna.Study) -> float | None:
    """The study's estimate of one trial: the median duration of its finished (not pruned) trials."""
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.datetime_start and t.datetime_complete]
    if not done:
        return None
    return statistics.median((t.datetime_complete - t.datetime_start).total_seconds() for t in done)


@dataclass
class Deadline:
    start: float
    total: float
    now: Callable[[], float] = field(default=time.time)
    report: float | None = None  # seconds the report took in an earlier session of the study

    @property
    def report_seconds(self) -> float:
        return 1.25 * self.report if self.report is not None else max(REPORT_SHARE * self.total, REPORT_SECONDS)

    @property
    def end(self) -> float:
        return self.start + self.total

    def search_end(self) -> float:
        """When trials must be done: the budget less the report."""
        return self.end - self.report_seconds

    def may_start(self, estimate: float | None) -> bool:
        """A trial starts only when, by the estimate (None before any has finished), it ends before the search."""
        return self.now() + (estimate or 0.0) < self.search_end()

    def left(self, until: float) -> float:
        return until - self.now()
