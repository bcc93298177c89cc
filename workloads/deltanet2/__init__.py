"""Gated DeltaNet-2 (with the KDA and GDN special cases): reference kernels and op counts.

The trace generator (``generate``) emits decode (token-serial state updates), prefill and
train (chunkwise WY kernels) traces of whole models, optionally hybrid with sliding-window
attention; presets live in ``presets/``.
"""

from workloads.deltanet2.generator import generate
from workloads.deltanet2.spec import LIBRARY, DeltaNet2Spec

Spec = DeltaNet2Spec
SUMMARY = "Gated DeltaNet-2 / KDA / GDN language models (optionally hybrid with SWA)"
WORK_UNIT = "token"
presets = LIBRARY.presets
load_spec = LIBRARY.load_spec
describe = LIBRARY.describe

__all__ = ["SUMMARY", "WORK_UNIT", "DeltaNet2Spec", "Spec", "describe", "generate", "load_spec",
           "presets"]
