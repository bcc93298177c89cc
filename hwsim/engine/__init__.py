"""The event-driven replay engine: machines, per-op costs, the SimPy replay and its result."""
