from __future__ import annotations

import pytest

from tests.package.support import SUMMARY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.write_sep("-", "chalice package")
        for line in SUMMARY:
            terminalreporter.write_line(line)
