"""The run pipeline: machines, per-op costs, the timing strategies (SimPy replay, roofline), records."""
