"""Softmax-transformer baseline: dense decoder with full causal attention and a KV cache."""

from workloads.transformer.generator import generate
from workloads.transformer.spec import LIBRARY, TransformerSpec

Spec = TransformerSpec
SUMMARY = "dense softmax-attention decoder with a KV cache (baseline for linear attention)"
WORK_UNIT = "token"
presets = LIBRARY.presets
load_spec = LIBRARY.load_spec
describe = LIBRARY.describe

__all__ = ["SUMMARY", "WORK_UNIT", "Spec", "TransformerSpec", "describe", "generate", "load_spec",
           "presets"]
