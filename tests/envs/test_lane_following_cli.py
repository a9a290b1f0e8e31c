"""`ddpg lane reference`: the scripted controller's distance per episode, and its bad input."""

import json

import pytest

from ddpg.cli import main
from ddpg.envs.lane_following import reference
from tests.helpers import error_line

SHORT = ["--set", "env.max_steps=30"]


def test_reference_json_agrees_with_the_reference_function(capsys):
    assert main(["lane", "reference", "--episodes", "2", "--seed", "4", *SHORT, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == reference(episodes=2, seed=4, max_steps=30)


def test_reference_text_has_a_line_per_episode_and_the_mean(capsys):
    assert main(["lane", "reference", "--episodes", "2", *SHORT]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["episode 0", "episode 1"]
    assert lines[0].endswith(f"return {reference(episodes=2, max_steps=30)['returns'][0]:.1f}")
    assert lines[2].startswith("mean ") and " m over 2 episodes; mean return " in lines[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "nope=1"], "--set expects env.KEY=VALUE, got 'nope=1'"),
        (["--set", "env.nope=1"], "--set: LaneFollowingEnv.__init__() got an unexpected keyword argument"),
        (["--set", "env.map_name=zzz"], "map_name: unknown map 'zzz'"),
        (["--episodes", "0"], "argument --episodes: expected a positive integer, got '0'"),
    ],
)
def test_bad_input_is_one_error_line_exit_2(args, message, capsys):
    assert main(["lane", "reference", *args]) == 2
    assert message in error_line(capsys)
