"""The host runtime: the CPU-side cost of issuing kernels, which bounds small-kernel work.

A GPU runs a kernel only after the host has launched it. The host issues the trace's
kernels one after another in trace order, ``launch_overhead`` apart (driver, framework
dispatch), and spends ``step_overhead`` before the first kernel of each new step (a decode
token, a training iteration: scheduling, sampling, the Python loop). A launched kernel
reaches the device ``launch_latency`` later. The host never waits for the device
(asynchronous launches), so its cost is hidden while kernels are long and sets the pace
when they are short, as on real machines::

    host_i  = host_{i-1} + launch_overhead + step_overhead * [op i starts a new step]
    start_i >= host_i + launch_latency

Only ops that run as kernels are issued (ops with a compute unit, and transfers);
``alloc``, ``free`` and ``sync`` are bookkeeping and cost the host nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.components.base import Component, register, seconds_to_cycles
from hwsim.config.fields import param


@register("host_runtime")
class HostRuntime(Component):
    """The host that launches kernels: a per-kernel and a per-step cost on one serial clock."""

    @dataclass(frozen=True, kw_only=True)
    class Config:
        launch_overhead: float = param(0.0, unit="time", minimum=0.0,
                                       help="host time to issue one kernel, s")
        launch_latency: float = param(0.0, unit="time", minimum=0.0,
                                      help="time from a launch to the kernel's start on an idle device, s")
        step_overhead: float = param(0.0, unit="time", minimum=0.0,
                                     help="host time before the first kernel of each step, s")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

    @property
    def launch_cycles(self) -> int:
        return seconds_to_cycles(self.config.launch_overhead, self.ref_clock_hz)

    @property
    def latency_cycles(self) -> int:
        return seconds_to_cycles(self.config.launch_latency, self.ref_clock_hz)

    @property
    def step_cycles(self) -> int:
        return seconds_to_cycles(self.config.step_overhead, self.ref_clock_hz)


class HostClock:
    """The host's issue clock carried across the batches of one run."""

    def __init__(self, host: HostRuntime | None) -> None:
        self.host = host
        self.clock = 0        # reference cycles: when the host is free to issue the next kernel
        self.last_step: int | None = None  # step tag of the last tagged kernel issued

    def issue_times(self, kernels: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Earliest start cycle of each op of a batch (int64; 0 where the op is no kernel).

        ``kernels`` marks the ops the host launches; ``steps`` is the trace's ``step`` tag
        (a change of value among kernels starts a new step; -1 rows never do).
        """
        n = len(kernels)
        if self.host is None or not kernels.any():
            return np.zeros(n, dtype=np.int64)
        rows = np.flatnonzero(kernels)
        out = np.zeros(n, dtype=np.int64)
        out[rows] = self.launch(steps[rows])
        return out

    def launch(self, step: np.ndarray) -> np.ndarray:
        """Earliest start cycle (int64) of each of a batch's kernels, in order; ``step`` is
        each kernel's ``step`` tag. Needs a host."""
        step = step.astype(np.int64)
        if len(step) and step.max() < 0:   # no kernel is tagged with a step: each costs a launch
            issued = self.clock + self.host.launch_cycles * np.arange(1, len(step) + 1, dtype=np.int64)
            self.clock = int(issued[-1])
            return issued + self.host.latency_cycles
        # The step in force before each kernel: the last non-negative tag seen (-1 = untagged).
        tagged = np.where(step >= 0, np.arange(len(step)), -1)
        last_tagged = np.maximum.accumulate(tagged)
        before = np.empty(len(step), dtype=np.int64)
        before[0] = -1
        before[1:] = last_tagged[:-1]
        carried = -2 if self.last_step is None else self.last_step  # -2: no step yet this run
        previous = np.where(before >= 0, step[np.maximum(before, 0)], carried)
        new_step = (step >= 0) & (step != previous)
        cost = self.host.launch_cycles + self.host.step_cycles * new_step.astype(np.int64)
        issued = self.clock + np.cumsum(cost)
        self.clock = int(issued[-1])
        if last_tagged[-1] >= 0:
            self.last_step = int(step[last_tagged[-1]])
        return issued + self.host.latency_cycles
