"""The whole suite's hooks.

``CHATBOT_TESTS_WITHOUT_TORCH=1`` runs the suite where PyTorch cannot be installed (Python 3.10
here: the machine has a CPU build of torch for 3.11 only, and PyPI's would be a multi-GB CUDA
build). Serving, the stores, the channels and the API import no torch, so most of the suite runs;
a test that fails or cannot be collected *because* torch is missing (it trains a model, in this
process or in a ``chatbot`` subprocess) is reported as skipped, saying so. Every other failure
stays a failure. Without the variable nothing changes: a missing torch fails the tests that need
it, as it should where torch is meant to be installed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator
from typing import Any

import pytest

pytest_plugins = ["pytester"]  # tests/test_without_torch.py runs this file's hooks in a session

WITHOUT_TORCH_ENV = "CHATBOT_TESTS_WITHOUT_TORCH"
# As Python says it, or as a subprocess's captured output shows it inside a repr.
TORCH_MISSING = re.compile(r"No module named \\?'torch\\?'")
SKIP_REASON = f"needs PyTorch, which is not installed ({WITHOUT_TORCH_ENV}=1)"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(WITHOUT_TORCH_ENV) == "1":
        # A plugin, not this conftest's own hooks: a conftest's hooks are path-bound, and a
        # folder whose conftest cannot be imported (it trains a model) has none of them.
        config.pluginmanager.register(WithoutTorch(), "chatbot-tests-without-torch")


def _for_want_of_torch(report: pytest.CollectReport | pytest.TestReport) -> bool:
    if not report.failed:
        return False
    told = [str(report.longrepr), *(text for _, text in report.sections)]
    return any(TORCH_MISSING.search(text) for text in told)


def _skipped(report: pytest.CollectReport | pytest.TestReport, lineno: int | None) -> None:
    report.outcome = "skipped"
    report.longrepr = (str(report.fspath), lineno, SKIP_REASON)


class WithoutTorch:
    """What failed for want of torch is reported as skipped."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.CollectReport = outcome.get_result()
        if _for_want_of_torch(report):
            _skipped(report, None)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if _for_want_of_torch(report):
            _skipped(report, item.location[1] + 1)  # as pytest reports a skip
