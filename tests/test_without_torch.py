"""``CHATBOT_TESTS_WITHOUT_TORCH=1`` (the Python 3.10 run): what fails for want of torch is
skipped, nothing else is, and without the variable nothing changes. Run in a pytest session of
its own with tests/conftest.py as its conftest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import WITHOUT_TORCH_ENV

CONFTEST = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")

TESTS = """
import subprocess
import sys


def test_trains_a_model():
    raise ModuleNotFoundError("No module named 'torch'", name="torch")


def test_runs_a_command_that_trains():
    done = subprocess.run(
        [sys.executable, "-c", "raise ModuleNotFoundError(\\"No module named 'torch'\\")"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done


def test_is_wrong():
    assert 1 + 1 == 3


def test_lacks_another_module():
    raise ModuleNotFoundError("No module named 'torchvision'", name="torchvision")


def test_is_right():
    assert 1 + 1 == 2
"""

FOLDER_CONFTEST = """raise ModuleNotFoundError("No module named 'torch'", name="torch")"""
FOLDER_TEST = """def test_in_a_folder_that_trains():\n    pass\n"""


@pytest.fixture
def session(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_sample=TESTS)
    folder = pytester.mkpydir("trains")
    (folder / "conftest.py").write_text(FOLDER_CONFTEST, encoding="utf-8")
    (folder / "test_folder.py").write_text(FOLDER_TEST, encoding="utf-8")
    return pytester


def test_what_fails_for_want_of_torch_is_skipped_and_nothing_else(
    session: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WITHOUT_TORCH_ENV, "1")
    result = session.runpytest_subprocess("-rfs", "-p", "no:cacheprovider")
    # the two tests and the folder that need torch; the wrong test and the other module fail
    result.assert_outcomes(passed=1, failed=2, skipped=3)
    result.stdout.fnmatch_lines(["*test_sample.py:*: needs PyTorch, which is not installed*"])
    result.stdout.fnmatch_lines(["FAILED test_sample.py::test_is_wrong*"])
    result.stdout.fnmatch_lines(["FAILED test_sample.py::test_lacks_another_module*"])


def test_without_the_variable_a_missing_torch_fails(
    session: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(WITHOUT_TORCH_ENV, raising=False)
    result = session.runpytest_subprocess(
        "-p", "no:cacheprovider", "--continue-on-collection-errors"
    )
    result.assert_outcomes(passed=1, failed=4, errors=1)
