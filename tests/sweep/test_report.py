"""The sweep report: Pareto front, figures per axis and trace, and the Markdown table."""

from __future__ import annotations

import numpy as np

from hwsim.reports.sweep import is_sweep_folder, pareto_front, render_sweep
from hwsim.sweep import load_sweep, run_sweep

from ..conftest import ARCH, EXAMPLES


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    throughput = np.array([10.0, 8.0, 12.0, 12.0, 5.0, np.nan, 12.0])
    energy = np.array([2.0, 1.0, 3.0, 4.0, 1.5, 0.1, 3.0])
    # 0: 10@2; 1: 8@1; 2: 12@3 (and its duplicate 6); 3 loses to 2; 4 loses to 1; 5 is NaN.
    assert pareto_front(throughput, energy).tolist() == [True, True, True, False, False, False, True]


def test_render_writes_a_figure_per_axis_and_trace_and_a_markdown_table(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [{EXAMPLES / 'gemm.csv'}, {EXAMPLES / 'offload.csv'}]\n"
                     "axes:\n  components.link.bandwidth: [4 GB/s, 16 GB/s]\n"
                     "  placement.kv_window: [hbm, dram]\n  components.link.energy_per_bit: [2 pJ/bit, 8 pJ/bit]\n")
    out = tmp_path / "out"
    run_sweep(load_sweep(sweep), out, workers=0, quiet=True)
    assert is_sweep_folder(out) and not is_sweep_folder(tmp_path)
    page = render_sweep(out)
    assert page == out / "sweep.md"
    pngs = sorted(p.name for p in (out / "report").glob("*.png"))
    assert pngs == ["axis-0-components-link-bandwidth.png", "axis-1-placement-kv-window.png",
                    "axis-2-components-link-energy-per-bit.png", "pareto-t0.png", "pareto-t1.png"]
    assert all((out / "report" / name).read_bytes().startswith(b"\x89PNG") for name in pngs)
    text = page.read_text()
    assert "# Sweep: 8 points x 2 traces" in text and "Pareto front" in text
    assert "](report/pareto-t1.png)" in text and "| placement.kv_window |" in text
