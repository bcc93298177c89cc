"""CI regression on cycle counts: run pinned cases and compare with a baseline CSV.

    outcome = regress(["tests/regress/regress.yaml"], "tests/regress/baselines.csv",
                      tolerance=0.005)
    outcome.failed        # True when a case moved beyond tolerance, is missing or extra
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hwsim.errors import HwsimError
from hwsim.regress.baseline import Change, Metrics, compare, read_baseline, write_baseline
from hwsim.regress.cases import Case, case_metrics, check_inputs, load_cases

__all__ = ["Case", "Change", "RegressOutcome", "case_metrics", "compare", "load_cases", "read_baseline",
           "regress", "write_baseline"]


@dataclass
class RegressOutcome:
    """The cases run, their metrics, the errors, and every difference from the baseline."""

    cases: list[str]
    current: Metrics
    errors: dict[str, str]
    changes: list[Change] = field(default_factory=list)
    updated: bool = False

    @property
    def failed(self) -> bool:
        return any(change.failed for change in self.changes)


def regress(cases_files: Sequence[str | os.PathLike], baseline: str | os.PathLike, *,
            tolerance: float = 0.005, update: bool = False,
            on_case: Callable[[Case], None] | None = None) -> RegressOutcome:
    """Run every case and compare with ``baseline`` (relative ``tolerance``).

    ``update`` re-pins the baseline from this run (atomically) when every case ran;
    ``changes`` then lists what moved. Raises ConfigError for a bad cases or baseline file
    (a missing baseline is fine with ``update``).
    """
    cases = load_cases(*cases_files)
    check_inputs(cases)
    old: Metrics = {} if update and not os.path.exists(baseline) else read_baseline(baseline)
    current: Metrics = {}
    errors: dict[str, str] = {}
    for case in cases:
        if on_case is not None:
            on_case(case)
        try:
            current[case.name] = case_metrics(case)
        except (HwsimError, ImportError) as err:
            errors[case.name] = " ".join(str(err).split())
    outcome = RegressOutcome([c.name for c in cases], current, errors)
    outcome.changes = compare(old, current, errors, tolerance)
    if update and not errors:
        write_baseline(baseline, current)
        outcome.updated = True
    return outcome
