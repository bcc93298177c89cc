"""WorldKV: pose-based chunk retrieval, anchor-frame key compression and window attention.

The trace generator (``generate``) emits a chunked autoregressive video-diffusion rollout
under the full, sliding or worldkv KV policy, with World Retrieval and World Compression as
real ops; presets live in ``presets/``.
"""

from workloads.worldkv.generator import generate
from workloads.worldkv.spec import LIBRARY, WorldKVSpec

Spec = WorldKVSpec
SUMMARY = "chunked AR video diffusion with World Retrieval + World Compression KV policies"
WORK_UNIT = "frame"
presets = LIBRARY.presets
load_spec = LIBRARY.load_spec
describe = LIBRARY.describe

__all__ = ["SUMMARY", "WORK_UNIT", "Spec", "WorldKVSpec", "describe", "generate", "load_spec",
           "presets"]
