import json
import math

import numpy as np
import pytest

from ddpg.envs.slot_car.env import SlotCarEnv
from ddpg.envs.slot_car.physics import CarParams
from ddpg.envs.slot_car.reference import (
    best_constant_throttle,
    optimal_profile,
    plot_profile,
    record_best_lap,
    reference,
)
from ddpg.envs.slot_car.track import builtin_track


@pytest.fixture(scope="module")
def oval():
    return builtin_track("oval")


def test_optimal_profile_never_exceeds_grip_limit(oval):
    prof = optimal_profile(oval, CarParams())
    with np.errstate(divide="ignore"):
        grip = np.sqrt(CarParams().grip / np.abs(oval.kappa))
    assert np.all(prof["v"] <= grip + 1e-12)


def test_optimal_profile_is_reachable_by_accelerating_and_braking(oval):
    p = CarParams()
    v = optimal_profile(oval, p)["v"]
    dv2 = np.diff(np.append(v, v[0]) ** 2) / (2 * oval.spacing)
    assert dv2.max() <= p.max_motor_force / p.mass + 1e-9
    assert dv2.min() >= -(p.max_brake_force / p.mass + 2.0)


@pytest.mark.parametrize("throttle", np.linspace(0.1, 1.0, 10))
def test_optimal_lap_beats_every_constant_throttle(oval, throttle):
    optimal = optimal_profile(oval, CarParams())["lap_time"]
    env = SlotCarEnv(track=oval, max_time_s=None, max_laps=3)
    env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step([throttle])
    assert terminated or min(env.state.lap_times) > optimal


def test_best_constant_throttle_does_not_crash_and_a_bit_more_does(oval):
    best = best_constant_throttle(oval, CarParams())
    env = SlotCarEnv(track=oval, max_time_s=None, max_laps=12)
    env.reset(seed=0)
    crashed = False
    for _ in range(5000):
        _, _, crashed, truncated, _ = env.step([best["throttle"] + 0.01])
        if crashed or truncated:
            break
    assert not best["crashed"] and crashed


def test_standing_lap_is_slower_than_flying_lap(oval):
    prof = optimal_profile(oval, CarParams())
    assert prof["standing_lap_time"] > prof["lap_time"]


def test_reference_is_json_serialisable_with_ratio_above_one():
    ref = json.loads(json.dumps(reference("oval")))
    assert ref["ratio"] > 1.0
    assert len(ref["profile"]["s"]) == len(ref["profile"]["v"]) == len(ref["profile"]["v_grip"])


def test_plot_profile_writes_png(tmp_path, oval):
    out = tmp_path / "profile.png"
    plot_profile(str(out), oval, CarParams(), learned_s=[0.0, 1.0, 2.0], learned_v=[0.0, 2.0, 3.0])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_record_best_lap_returns_fastest_completed_lap():
    record = record_best_lap(
        lambda obs: np.array([0.5]), {"track": "oval", "max_laps": 3, "max_time_s": None}
    )
    assert record.laps_completed == 3
    assert record.lap_time < 3.0 and len(record.s) == len(record.v) > 100
    assert record.s[0] < 0.1 and record.s[-1] > 8.0


def test_record_best_lap_without_a_lap_reports_infinite_time():
    record = record_best_lap(lambda obs: np.array([1.0]), {"track": "oval"})
    assert math.isinf(record.lap_time) and record.laps_completed == 0
