import math

import pytest

from ddpg.envs.slot_car import physics as dyn
from ddpg.envs.slot_car.env import SlotCarEnv
from ddpg.envs.slot_car.physics import GRAVITY, CarParams, car_params
from ddpg.envs.slot_car.track import track_from_points


def force_balance_speed(u: float, p: CarParams) -> float:
    """Solve F_max (u - v / v_max) = c m g + rho CdA v^2 / 2 for v with the quadratic formula."""
    a = 0.5 * p.air_density * p.drag_area
    b = p.max_motor_force / p.motor_speed
    c = p.rolling_resistance * p.mass * GRAVITY - u * p.max_motor_force
    return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)


def big_circle(radius: float = 40.0) -> list[list[float]]:
    return [
        [radius * math.cos(2 * math.pi * k / 32), radius * math.sin(2 * math.pi * k / 32)] for k in range(32)
    ]


def test_terminal_speed_matches_force_balance():
    p = CarParams()
    for u in (0.3, 0.7, 1.0):
        assert dyn.terminal_speed(u, p) == pytest.approx(force_balance_speed(u, p), rel=1e-12)


def test_constant_throttle_on_near_straight_track_reaches_terminal_speed():
    env = SlotCarEnv(track=big_circle(), observation="minimal", max_time_s=None)
    env.reset(seed=0)
    for _ in range(900):  # 15 s, about 19 time constants of the speed
        _, _, terminated, _, info = env.step([0.6])
        assert not terminated
    assert info["speed"] == pytest.approx(force_balance_speed(0.6, env.params), rel=1e-4)


def test_braking_stops_the_car_without_reversing():
    v = 3.0
    for _ in range(400):
        v, ds = dyn.substep(v, -1.0, 1 / 240, CarParams())
        assert v >= 0.0 and ds >= 0.0
    assert v == 0.0


@pytest.fixture(scope="module")
def ring():
    return track_from_points(
        [[0.5 * math.cos(2 * math.pi * k / 24), 0.5 * math.sin(2 * math.pi * k / 24)] for k in range(24)]
    )


def test_car_stays_in_slot_just_below_grip_limit(ring):
    env = SlotCarEnv(track=ring, observation="minimal")
    v_limit = math.sqrt(env.params.grip / float(abs(ring.kappa).max()))
    env.reset(options={"start_speed": 0.995 * v_limit})
    _, _, terminated, _, info = env.step([0.0])
    assert not terminated and info["crashes"] == 0


def test_car_deslots_just_above_grip_limit(ring):
    env = SlotCarEnv(track=ring, observation="minimal")
    v_limit = math.sqrt(env.params.grip / float(abs(ring.kappa).min()))
    env.reset(options={"start_speed": 1.005 * v_limit})
    _, _, terminated, _, info = env.step([0.0])
    assert terminated and info["crashes"] == 1


def test_full_throttle_from_the_start_crashes_on_the_oval():
    env = SlotCarEnv(track="oval")
    env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step([1.0])
    assert terminated and info["laps_completed"] == 0


def test_physics_overrides_accept_yaml_strings():
    assert car_params({"mass": "0.1", "substeps": 8.0}) == CarParams(mass=0.1, substeps=8)


@pytest.mark.parametrize("field", ["mass", "max_motor_force", "grip", "dt", "substeps", "drag_area"])
@pytest.mark.parametrize("value", [0, -1.0])
def test_non_positive_constant_raises_naming_it(field, value):
    with pytest.raises(ValueError, match=rf"physics\.{field}: must be positive"):
        car_params({field: value})


def test_unknown_physics_field_raises_listing_known_ones():
    with pytest.raises(ValueError, match=r"physics: unknown field 'wings'; known fields are \['mass'"):
        car_params({"wings": 2})
