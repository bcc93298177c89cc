"""The trace: the operation table that workload generators write and the engine replays."""

from hwsim.trace.columns import OpColumns, Vocabulary
from hwsim.trace.io import read_trace, write_trace
from hwsim.trace.schema import COLUMNS, DTYPE_BYTES, KINDS, SCHEMA_VERSION
from hwsim.trace.trace import Trace, TraceMeta

__all__ = ["COLUMNS", "DTYPE_BYTES", "KINDS", "SCHEMA_VERSION", "OpColumns", "Trace", "TraceMeta",
           "Vocabulary", "read_trace", "write_trace"]
