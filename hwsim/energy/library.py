"""Published energy figures, each with its source, technology node and supply voltage.

A machine YAML may give an energy field as a literal (``3.9 pJ/bit``, with its source in the
component's ``source`` or ``provenance``) or as a reference to an entry here, optionally
scaled to another node and voltage::

    energy_per_flop: {ref: horowitz_fp16_flop, node: 5 nm, voltage: 0.75}

Scaling follows dynamic energy E = C V^2 with switched capacitance proportional to feature
size: ``E_new = E_old * (node_new / node_old) * (V_new / V_old)^2``. Absolute 45 nm values
overstate modern logic energy; the ratios (DRAM >> large SRAM >> small SRAM >> MAC) are the
durable part, which is why the original value, node and rule travel with every number.
DRAM, HBM and SerDes figures are device or interface measurements and are not scaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwsim.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Constant:
    """One published figure: ``value`` in the dimension's base unit (pJ, pJ/bit or W)."""

    name: str
    value: float
    dimension: str
    source: str
    node_nm: float | None = None
    voltage: float | None = None
    note: str = ""

    def scaled(self, node_nm: float | None, voltage: float | None) -> tuple[float, str]:
        """The value at ``node_nm`` / ``voltage`` (C·V² rule) and a provenance sentence."""
        if node_nm is None and voltage is None:
            return self.value, f"{self.source}: {self._at()}"
        if self.node_nm is None:
            raise ConfigError(f"energy constant {self.name!r} is a device/interface figure and "
                              "cannot be scaled by node")
        node = node_nm if node_nm is not None else self.node_nm
        volts = voltage if voltage is not None else self.voltage
        factor = (node / self.node_nm) * (volts / self.voltage) ** 2
        value = self.value * factor
        return value, (f"{self.source}: {self._at()}; scaled to {node:g} nm, {volts:g} V by "
                       f"E ~ C*V^2 with C ~ node (x{factor:.4g}) = {value:.4g}")

    def _at(self) -> str:
        where = f" at {self.node_nm:g} nm, {self.voltage:g} V" if self.node_nm else ""
        unit = {"energy": "pJ", "energy_bit": "pJ/bit", "power": "W"}[self.dimension]
        note = f" ({self.note})" if self.note else ""
        return f"{self.value:.4g} {unit}{where}{note}"


HOROWITZ = "M. Horowitz, 'Computing's Energy Problem', ISSCC 2014 keynote, Table (45 nm, 0.9 V)"

LIBRARY: dict[str, Constant] = {c.name: c for c in (
    Constant("horowitz_fp16_flop", (1.1 + 0.4) / 2, "energy", HOROWITZ, 45, 0.9,
             "FP16 mult 1.1 pJ + add 0.4 pJ per MAC, per FLOP"),
    Constant("horowitz_fp32_flop", (3.7 + 0.9) / 2, "energy", HOROWITZ, 45, 0.9,
             "FP32 mult 3.7 pJ + add 0.9 pJ per MAC, per FLOP"),
    Constant("horowitz_int8_op", (0.2 + 0.03) / 2, "energy", HOROWITZ, 45, 0.9,
             "INT8 mult 0.2 pJ + add 0.03 pJ per MAC, per op"),
    Constant("horowitz_sram_8kb_bit", 10 / 64, "energy_bit", HOROWITZ, 45, 0.9, "8 KB SRAM, 10 pJ per 64-bit access"),
    Constant("horowitz_sram_32kb_bit", 20 / 64, "energy_bit", HOROWITZ, 45, 0.9, "32 KB SRAM, 20 pJ per 64-bit access"),
    Constant("horowitz_sram_1mb_bit", 100 / 64, "energy_bit", HOROWITZ, 45, 0.9, "1 MB SRAM, 100 pJ per 64-bit access"),
    Constant("horowitz_dram_bit", 1300 / 64, "energy_bit", HOROWITZ, note="DRAM 1.3-2.6 nJ per 64-bit access; low end"),
    Constant("hbm2_device_bit", 3.9, "energy_bit",
             "O'Connor et al., 'Fine-Grained DRAM', MICRO 2017 (HBM2 device access)"),
    Constant("pcie_serdes_bit", 5.5, "energy_bit",
             "Hot Chips NVLink-C2C analysis: PCIe-class SerDes ~5.5 pJ/bit"),
    Constant("nvlink_c2c_bit", 1.3, "energy_bit", "NVIDIA NVLink-C2C announcement (2022-03-22), ~1.3 pJ/bit"),
    Constant("tcam_search_bit", 2.89e-3, "energy", "Pagiamtzis & Sheikholeslami, JSSC 2004, 1024x144 b TCAM",
             180, 1.8, "2.89 fJ per bit per search"),
)}


def resolve(value: dict[str, Any], dimension: str, where: str) -> tuple[float, str]:
    """Resolve ``{ref: name, node: '5 nm', voltage: 0.75}`` into (value, provenance note)."""
    unknown = set(value) - {"ref", "node", "voltage"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} in an energy reference "
                          "(expected ref, node, voltage)")
    name = str(value.get("ref", ""))
    if name not in LIBRARY:
        raise ConfigError(f"{where}: unknown energy constant {name!r}{did_you_mean(name, tuple(LIBRARY))}")
    constant = LIBRARY[name]
    if constant.dimension != dimension:
        raise ConfigError(f"{where}: {name!r} is a {constant.dimension} figure, not {dimension}")
    node_nm = _number(value.get("node"), "nm", f"{where}.node")
    voltage = _number(value.get("voltage"), "V", f"{where}.voltage")
    return constant.scaled(node_nm, voltage)


def _number(value: Any, suffix: str, where: str) -> float | None:
    """Read ``5 nm`` / ``0.75 V`` / a bare number; None when absent."""
    if value is None:
        return None
    text = str(value).strip()
    if text.endswith(suffix):
        text = text[: -len(suffix)].strip()
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{where}: expected a number in {suffix}, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{where}: must be > 0, got {value!r}")
    return number
