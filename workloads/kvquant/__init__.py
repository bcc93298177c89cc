"""KV-cache quantization shared by the attention families: formats, op counts, trace ops and
reference kernels (Hadamard rotation, per-token norm scaling, group quantization, attention
over a dequantized cache), including OScaR-style INT2.

Not a workload family of its own: the transformer, WorldKV and HRM generators take a
:class:`~workloads.kvquant.format.KVFormat` from their ``kv_*`` parameters.
"""

from workloads.kvquant.format import KV_DTYPES, KV_METHODS, KVCacheParams, KVFormat

__all__ = ["KV_DTYPES", "KV_METHODS", "KVCacheParams", "KVFormat"]
