"""bench/speed.py: ddpg against Stable-Baselines3 (`python bench/speed.py speed|solve`)."""

import sys

import pytest

from tests.bench import script

speed = script("speed")
main = speed.main


def test_bench_without_stable_baselines3_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # makes `import stable_baselines3` fail
    assert main(["speed"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: stable-baselines3 is not installed") and "[bench]" in err


def test_bench_speed_refuses_bad_sizes(capsys):
    assert main(["speed", "--arch", "64,0"]) == 2
    assert capsys.readouterr().err.startswith("error: argument --arch")


def test_bench_solve_refuses_an_unknown_preset(capsys):
    assert main(["solve", "--preset", "no-such-preset"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown preset 'no-such-preset'")


def test_stopwatch_times_exactly_the_steps_between_start_and_stop():
    import gymnasium as gym

    Stopwatch = speed.Stopwatch

    env = Stopwatch(gym.make("Pendulum-v1"), start=3, stop=8)
    env.reset(seed=0)
    for _ in range(10):
        env.step(env.action_space.sample())
    assert env.t_start is not None and env.t_stop is not None and env.t_stop > env.t_start
    assert env.rate == pytest.approx((8 - 3) / (env.t_stop - env.t_start))


def test_bench_speed_measures_both_libraries_in_every_round():
    pytest.importorskip("stable_baselines3")
    SpeedSettings, run_speed = speed.SpeedSettings, speed.run_speed

    settings = SpeedSettings(steps=20, learning_starts=256, settle=4, rounds=1, compile=False)
    result = run_speed(settings)
    assert len(result.ddpg) == len(result.sb3) == len(result.ratios) == 1
    assert result.ratios[0] == pytest.approx(result.ddpg[0] / result.sb3[0])
