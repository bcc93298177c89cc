"""HRM-Text: hierarchical recurrent reasoning model reference forward pass and op counts.

The trace generator (``generate``) emits N x (T + 1) module applications per token, each a
stack of pre-norm blocks with its own KV-cache slot; presets live in ``presets/``.
"""

from workloads.hrm.generator import generate
from workloads.hrm.spec import LIBRARY, HRMSpec

Spec = HRMSpec
SUMMARY = "HRM-Text: two transformer modules applied N x (T + 1) times per token"
WORK_UNIT = "token"
presets = LIBRARY.presets
load_spec = LIBRARY.load_spec
describe = LIBRARY.describe

__all__ = ["SUMMARY", "WORK_UNIT", "HRMSpec", "Spec", "describe", "generate", "load_spec", "presets"]
