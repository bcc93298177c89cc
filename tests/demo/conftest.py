"""The demo tests share the report tests' headless-browser fixture."""

from tests.reports.conftest import chromium  # noqa: F401
