"""Which constants a fit may move, per measurement category, with their bounds.

Only fractions and overheads are fitted; datasheet figures (peaks, bandwidths, capacities)
never are. The keys name the components of the shipped GPU machines (``tensor``, ``vector``,
``hbm``, ``pcie`` or ``c2c``, ``host``); a machine without one of them simply skips it, and
``hwsim calibrate --param KEY=LOW:HIGH`` fits any other key.
"""

from __future__ import annotations

from hwsim.calibration.fit import Parameter
from hwsim.components.attention import KERNELS
from hwsim.errors import ConfigError

_T = "components.tensor."
_ATTENTION_PASSES = ("fwd", "bwd", "fwd_fp8")

CATALOGUE: dict[str, tuple[Parameter, ...]] = {
    "gemm": (
        # bf16/fp16 main loop: at most what a power-limited clock sustains (about 1.75 of
        # 1.98 GHz under GEMM load on an H100; large GEMMs reach ~0.8 of peak)
        Parameter(_T + "efficiency", 0.5, 0.87),
        Parameter(_T + "efficiency_by_dtype.fp8", 0.4, 1.0),
        Parameter(_T + "efficiency_by_dtype.fp8_block", 0.4, 1.0),
        Parameter(_T + "efficiency_by_dtype.tf32", 0.4, 1.0),
        Parameter(_T + "efficiency_by_dtype.fp32", 0.3, 1.0),
        Parameter(_T + "tile_overhead", 0.0, 3e-6, "us"),
        Parameter(_T + "epilogue_bandwidth", 5e9, 400e9, "GB/s"),
        Parameter("components.host.launch_latency", 0.0, 6e-6, "us"),
    ),
    "attention": tuple(
        Parameter(f"{_T}attention_{name}.{kernel}_{pass_name}", low, high, unit)
        for kernel in KERNELS for pass_name in _ATTENTION_PASSES
        for name, low, high, unit in (("efficiency", 0.2, 1.0, ""), ("overlap", 0.0, 1.0, ""),
                                      ("tile_overhead", 0.0, 20e-6, "us"))),
    "memory_bandwidth": (
        Parameter("components.hbm.efficiency", 0.6, 0.95),
        Parameter("components.hbm.write_efficiency", 0.5, 1.0),
    ),
    "host_link": (
        Parameter("components.pcie.efficiency", 0.5, 1.0),
        Parameter("components.c2c.efficiency_to.hbm", 0.4, 1.0),
        Parameter("components.c2c.efficiency_to.cpu_dram", 0.4, 1.0),
    ),
    "collective": (
        # NCCL's protocol overhead on NVLink (the maintainer quotes ~20%) and its step latencies
        Parameter("components.nvlink.efficiency.ring", 0.5, 1.0),
        Parameter("components.nvlink.efficiency.nvls", 0.3, 1.0),
        Parameter("components.nvlink.latency", 0.1e-6, 10e-6, "us"),
        Parameter("components.nvlink.nvls_latency", 0.1e-6, 20e-6, "us"),
        Parameter("components.nvlink.op_latency", 0.0, 40e-6, "us"),
        Parameter("components.nvlink.ll_latency", 0.1e-6, 10e-6, "us"),
    ),
    "gpu_link": (
        Parameter("components.nvlink.efficiency.ring", 0.5, 1.0),
        Parameter("components.pcie_p2p.efficiency.default", 0.2, 1.0),
    ),
    "kernel_launch": (
        Parameter("components.host.launch_overhead", 0.5e-6, 10e-6, "us"),
    ),
}


def parse_parameter(text: str) -> Parameter:
    """``KEY=LOW:HIGH`` or ``KEY=LOW:HIGH:UNIT`` (bounds in base units) as a Parameter."""
    key, sep, bounds = text.partition("=")
    parts = bounds.split(":")
    try:
        low, high = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        raise ConfigError(f"--param {text!r}: expected KEY=LOW:HIGH[:UNIT], e.g. "
                          "components.hbm.efficiency=0.6:0.95") from None
    unit = parts[2] if len(parts) > 2 else ""
    if not sep or not key or unit not in ("", "us", "ns", "GB/s") or len(parts) > 3:
        raise ConfigError(f"--param {text!r}: expected KEY=LOW:HIGH[:UNIT] with UNIT us, ns or GB/s")
    return Parameter(key, low, high, unit)


def for_machine(categories, machine: dict) -> list[Parameter]:
    """The catalogue's parameters for ``categories`` whose component the machine has.

    ``machine`` is a resolved config (``MachineConfig.to_dict()``); attention constants are
    kept only for kernels and passes the machine already sets (a fit does not invent them).
    """
    out = []
    components = machine["components"]
    for category in categories:
        for p in CATALOGUE.get(category, ()):
            parts = p.key.split(".")
            component = components.get(parts[1])
            if component is None:
                continue
            if parts[2].startswith("attention_") and parts[3] not in component.get("attention_efficiency", {}):
                continue
            if parts[2] == "efficiency_to" and parts[3] not in component.get("between", ()):
                continue
            out.append(p)
    return out
