"""Reports read run results (records DataFrame, summary dict, machine dict), never simulator
objects, and write tables, figures, timelines and HTML pages.

=================================  =====================================================
module                             what it produces
=================================  =====================================================
:mod:`hwsim.reports.roofline`      ceilings per unit/dtype and tier/link; ops and op kinds
:mod:`hwsim.reports.energy`        energy by component and op kind; constants' provenance
:mod:`hwsim.reports.timeline`      Chrome/Perfetto trace-event JSON
:mod:`hwsim.reports.compare`       runs side by side, with ratios to the first
:mod:`hwsim.reports.html`          one self-contained ``index.html`` per run, comparison or
                                   sweep folder (folder kinds plug in by registration)
:mod:`hwsim.reports.tables`        atomic, deterministic Parquet/CSV/Markdown/HTML and PNG
=================================  =====================================================

Submodules are imported on use, so ``import hwsim`` stays cheap (matplotlib loads only when
a figure is drawn).
"""
