"""``hwsim validate`` checks of the KV-cache quantization kernels.

* the Numba kernels equal their NumPy twins (rotation, norm scaling, group quantization at
  2, 4 and 8 bits, the fused attention over a quantized cache), and a quantized cache
  stores exactly the bytes :meth:`KVFormat.cache_bytes` (and so the traces) count;
* the attention-output error against bf16 of plain and OScaR-style quantization at 8, 4
  and 2 bits, on a synthetic cache with norm-imbalanced tokens (:func:`imbalanced_cache`),
  and OScaR-style INT2 must beat plain per-channel INT2 by a clear margin.
"""

from __future__ import annotations

import numpy as np

from workloads.common.checks import Check
from workloads.kvquant import kernels as kb
from workloads.kvquant import kernels_numpy as kn
from workloads.kvquant.format import KVFormat

#: OScaR-style INT2 must have at most this share of plain INT2's attention error.
OSCAR_MARGIN = 0.6
#: Loose ceilings on the attention error per bit width (the measured values are reported).
ERROR_CEILING = {8: 0.01, 4: 0.1, 2: 0.5}
#: The checks quantize every token (no bf16 residual window) to measure the quantizer.
GROUP = 32


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _without(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``x`` minus its component along the unit vectors ``u`` (last axis)."""
    return x - np.sum(x * u, axis=-1, keepdims=True) * u


def imbalanced_cache(rng: np.random.Generator, tokens: int = 512, kv_heads: int = 2,
                     q_heads: int = 8, head_dim: int = 64, queries: int = 16, topics: int = 16):
    """Queries, keys and values ``(q [Nq, Hq, d], k [N, H, d], v [N, H, d])`` (float64).

    Token norm imbalance as OScaR describes it, in two forms:

    * outlier tokens (1 in 16, the first token among them) whose keys carry a component
      8-16 times an ordinary key's norm along a per-head direction the queries point away
      from: they draw no attention, but they stretch the per-channel ranges of every key
      group they fall in;
    * a modality span (a quarter of the tokens, not aligned to the groups) whose keys have
      a tenth of the ordinary norm.

    Every token belongs to one of ``topics`` topics (its key direction and its value);
    each query asks for one topic, so the output is that topic's value and the error
    measures how well the keys still single out the topic. Attention sinks that draw
    attention through a large key norm are not modelled: OScaR-style scaling gives their
    keys the relative error of every other key, and how the method protects them is not
    public.
    """
    d = head_dim
    bias = _unit(rng.standard_normal((kv_heads, d)))
    topic = rng.integers(0, topics, tokens)
    topic_keys = _unit(_without(rng.standard_normal((topics, kv_heads, d)), bias))
    content = 0.6 * np.sqrt(d) * topic_keys[topic] + 0.8 * _without(rng.standard_normal((tokens, kv_heads, d)), bias)
    along = rng.standard_normal((tokens, kv_heads))
    outlier = rng.random(tokens) < 1 / 16
    outlier[0] = True
    along[outlier] = rng.uniform(8.0, 16.0, (int(outlier.sum()), kv_heads)) * np.sqrt(d)
    k = content + along[..., None] * bias
    start = rng.integers(1, tokens // 2)
    k[start:start + tokens // 4] *= 0.1
    v = rng.standard_normal((topics, kv_heads, d))[topic] + 0.5 * rng.standard_normal((tokens, kv_heads, d))
    group = q_heads // kv_heads
    asked = np.repeat(topic_keys, group, axis=1)[rng.integers(0, topics, (queries, q_heads)), np.arange(q_heads)]
    bias_q = np.repeat(bias, group, axis=0)
    q = 3.0 * (asked + 0.3 * _unit(_without(rng.standard_normal((queries, q_heads, d)), bias_q)))
    q -= 0.3 * np.linalg.norm(q, axis=-1, keepdims=True) * bias_q
    return q, k, v


def attention_errors(rng: np.random.Generator, bits=(8, 4, 2), methods=("plain", "oscar")) -> dict:
    """Relative RMS error of the attention output against bf16 K, V on one imbalanced cache,
    per ``(method, bits)``, computed with the fused Numba kernel."""
    q, k, v = imbalanced_cache(rng)
    reference = kb.attention_over_quantized(q, kn.quantize_kv(k, v, KVFormat("bf16")))
    errors = {}
    for method in methods:
        for b in bits:
            qkv = kn.quantize_kv(k, v, KVFormat(f"int{b}", method, GROUP, 0))
            out = kb.attention_over_quantized(q, qkv)
            errors[method, b] = float(np.linalg.norm(out - reference) / np.linalg.norm(reference))
    return errors


def twin_checks(rng: np.random.Generator) -> list[Check]:
    """Numba kernels against the NumPy twins, and stored bytes against the format's count."""
    x = rng.standard_normal((9, 2, 64))
    checks = [Check("kvquant fwht: numba == numpy twin (float64, d=64)",
                    float(np.max(np.abs(kb.fwht(x) - kn.fwht(x)))), 1e-12, "absolute"),
              Check("kvquant fwht is its own inverse", float(np.max(np.abs(kb.fwht(kb.fwht(x)) - x))),
                    1e-12, "absolute"),
              Check("kvquant token norm scaling: numba == numpy twin",
                    float(np.max(np.abs(kb.token_norm_scale(x)[0] - kn.token_norm_scale(x)[0]))), 0.0,
                    "exact")]
    for b in (8, 4, 2):
        for axis, label in ((0, "keys per channel"), (2, "values per token")):
            fast, twin = kb.quantize_groups(x, b, 4, axis), kn.quantize_groups(x, b, 4, axis)
            differ = sum(int(np.sum(f != t)) for f, t in zip(fast, twin, strict=True))
            back = float(np.max(np.abs(kb.dequantize_groups(*fast, 4, axis) - kn.dequantize_groups(*twin, 4, axis))))
            checks.append(Check(f"kvquant int{b} group quantize ({label}): numba == numpy twin",
                                differ + back, 0.0, "exact: codes, scales, dequantized values"))
    q, k, v = imbalanced_cache(rng, tokens=200, queries=4)
    for fmt in (KVFormat("int2", "oscar", GROUP, 40), KVFormat("int4", "plain", GROUP, 40)):
        qkv = kn.quantize_kv(k, v, fmt)
        label = f"{fmt.dtype} {fmt.method}, 200 tokens, residual 40"
        checks.append(Check(f"kvquant fused attention ({label}): numba == numpy twin",
                            float(np.max(np.abs(kb.attention_over_quantized(q, qkv)
                                                - kn.attention_over_quantized(q, qkv)))), 1e-10, "absolute"))
        checks.append(Check(f"kvquant stored bytes == KVFormat.cache_bytes ({label})",
                            abs(qkv.storage_bytes - fmt.cache_bytes(200, 2, 64)), 0,
                            f"{qkv.storage_bytes} B"))
    return checks


def accuracy_checks(rng: np.random.Generator) -> list[Check]:
    """Attention error against bf16 per method and bit width, and OScaR INT2 vs plain INT2."""
    errors = attention_errors(rng)
    checks = [Check(f"kv attention error vs bf16, {method} int{b} (norm-imbalanced cache)", error,
                    ERROR_CEILING[b], "relative RMS")
              for (method, b), error in errors.items()]
    ratio = errors["oscar", 2] / errors["plain", 2]
    checks.append(Check("kv int2: oscar error / plain per-channel error", ratio, OSCAR_MARGIN,
                        f"must be clearly better; {errors['oscar', 2]:.3f} vs {errors['plain', 2]:.3f}"))
    return checks


def kv_quant_checks(rng: np.random.Generator) -> list[Check]:
    """All checks of this module."""
    return [*twin_checks(rng), *accuracy_checks(rng)]
