"""hwsim: a cycle-approximate, event-driven simulator of hardware accelerators.

The data flow, one call per arrow::

    machine = hwsim.load_arch("arch_configs/h200.yaml")     # YAML -> MachineConfig
    trace = hwsim.read_trace("traces/examples/gemm.csv")    # file -> Trace
    result = hwsim.simulate(machine, trace)                 # -> RunResult (fidelity="event")
    result.records, result.summary
"""

from hwsim.config.machine import MachineConfig, load_arch
from hwsim.errors import CapacityError, ConfigError, HwsimError, TraceError
from hwsim.results import RunResult, simulate, write_run
from hwsim.trace import Trace, TraceMeta, read_trace, write_trace

__all__ = ["CapacityError", "ConfigError", "HwsimError", "MachineConfig", "RunResult", "Trace",
           "TraceError", "TraceMeta", "load_arch", "read_trace", "simulate", "write_run",
           "write_trace"]
__version__ = "0.1.0"
