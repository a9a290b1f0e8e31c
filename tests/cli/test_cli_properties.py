"""Property tests: no config value and no command line ends in a traceback.

Training itself is replaced by a stub (`DDPG.learn`): what is under test is everything before it —
parsing, validation, environment construction, resource checks — which must either accept the input or
refuse it with one line `error: …` and exit 2.
"""

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddpg import Config
from ddpg.cli import main
from ddpg.config import FLAT_KEYS, NoiseConfig, Schedule
from ddpg.run.agent import DDPG

KEYS = (
    [f.name for f in dataclasses.fields(Config)]
    + list(FLAT_KEYS)  # the flat keys, and the same fields by section
    + [f"{section}.{name}" for section, name in FLAT_KEYS.values()]
    + [f"noise.{f.name}" for f in dataclasses.fields(NoiseConfig)]
    + [f"noise.schedule.{f.name}" for f in dataclasses.fields(Schedule)]
    + [f"actor_lr_schedule.{f.name}" for f in dataclasses.fields(Schedule)]
    + ["env.g", "env.nope", "hidden_sizes.0", "noise.sigma.x", ""]
    + ["environment.kwargs.g", "optimisation.nope", "exploration.noise.sigma.x", "loop.seed.x"]
)
YAML_VALUES = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.booleans().map(str),
    st.sampled_from(
        [
            "null",
            "~",
            "[",
            "]",
            "{",
            "{a: 1}",
            "[1, 2]",
            "[0]",
            "[]",
            "''",
            "-",
            ":",
            "!!python/object:os.system",
            "gaussian",
            "ou",
            "none",
            "linear",
            "episode",
            "cuda",
            "cpu",
            "1e-3",
            "1e400",
            "nan",
            ".inf",
        ]
    ),
    st.lists(st.integers(min_value=-5, max_value=10**9), max_size=4).map(str),
    st.text(max_size=12),
)
SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def no_training(monkeypatch, tmp_path):
    def learn(self, total_steps=None, run_dir=None, **_):
        return {"final_eval_mean_return": None, "final_eval_std_return": None, "train_steps_per_second": 1.0}

    monkeypatch.setattr(DDPG, "learn", learn)
    monkeypatch.chdir(tmp_path)


def _exit_cleanly(argv: list[str], capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own --help
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert len(err) == 1 and err[0].startswith("error: "), (argv, err)


@SETTINGS
@given(key=st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), value=YAML_VALUES)
def test_any_set_override_is_accepted_or_refused_in_one_line(key, value, no_training, capsys):
    _exit_cleanly(["train", "--set", f"{key}={value}", "--steps", "1"], capsys)


WORDS = st.sampled_from(
    [
        "train",
        "evaluate",
        "plot",
        "envs",
        "resume",
        "export",
        "--env",
        "--preset",
        "--steps",
        "--seed",
        "--run-dir",
        "--set",
        "--episodes",
        "--video",
        "--json",
        "--checkpoint",
        "best",
        "--out",
        "Pendulum-v1",
        "paper",
        "CartPole-v1",
        "0",
        "-1",
        "x.mp4",
        "x.png",
        "x.onnx",
        "--format",
        "tau=0.5",
        "runs/nope",
        ".",
        "--",
    ]
)


@SETTINGS
@given(argv=st.lists(st.one_of(WORDS, st.text(max_size=8)), max_size=6))
def test_any_command_line_is_accepted_or_refused_in_one_line(argv, no_training, capsys):
    _exit_cleanly(argv, capsys)
