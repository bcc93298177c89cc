"""Architecture sweeps: a sweep file of axes over machine keys, run on Dask, one tidy table.

    spec = load_sweep("examples/sweeps/systolic-array-size.yaml")
    outcome = run_sweep(spec, "reports/sweep", workers=2)   # -> reports/sweep/results.parquet
    table, axes = read_results("reports/sweep")
"""

from hwsim.sweep.runner import Run, SweepOutcome, execute_run, plan, run_sweep
from hwsim.sweep.spec import Axis, Point, SweepSpec, TraceSource, load_sweep, sweep_from_dict
from hwsim.sweep.table import read_results

__all__ = ["Axis", "Point", "Run", "SweepOutcome", "SweepSpec", "TraceSource", "execute_run", "load_sweep",
           "plan", "read_results", "run_sweep", "sweep_from_dict"]
