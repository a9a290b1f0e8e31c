from pathlib import Path

import pytest

from ddpg.cli import main
from tests.run.test_resume import ARGS


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run that interrupted and resumed ones must reproduce, row for row."""
    run = tmp_path_factory.mktemp("reference") / "run"
    assert main([*ARGS, "--run-dir", str(run)]) == 0
    return run
