"""Longitudinal dynamics of a 1:32 slot car held in its slot by a guide blade and a magnet.

The slot fixes the path, so the state is just the distance travelled and the speed. The car leaves the
slot ("de-slots") when the lateral acceleration v^2 |kappa| needed to follow the track exceeds the grip.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GRAVITY = 9.81  # m/s^2


@dataclass(frozen=True)
class CarParams:
    """Physical constants of the car and the integration step (SI units).

    mass: car mass, kg (a 1:32 magnet car weighs 80-100 g).
    max_motor_force: tractive force at standstill with full throttle, N.
    motor_speed: no-load speed at full throttle, m/s. Throttle u > 0 is the fraction of the supply
        voltage, and the back-EMF of the DC motor grows with speed, so the force is
        max_motor_force * (u - v / motor_speed), or zero above u * motor_speed (the car coasts: the
        hand controller does not let the motor run as a generator). Throttle thus sets a speed, as on a
        real slot-car controller.
    max_brake_force: braking force at u = -1, N (motor short-circuit braking plus tyre friction).
    rolling_resistance: rolling-resistance coefficient, dimensionless; the force is c * mass * g.
    drag_area: drag coefficient times frontal area, m^2.
    air_density: kg/m^3.
    grip: lateral acceleration at which the car de-slots, m/s^2 (magnet cars hold 2-3 g).
    dt: duration of one environment step, s.
    substeps: integration substeps per environment step (semi-implicit Euler).

    The defaults give a top speed of about 6.5 m/s, a 2.2 s optimal flying lap on the ``oval`` (0.6 m
    bends, where grip allows 3.5 m/s) and a crash in the first bend at full throttle.
    """

    mass: float = 0.09
    max_motor_force: float = 0.8
    motor_speed: float = 7.0
    max_brake_force: float = 1.2
    rolling_resistance: float = 0.03
    drag_area: float = 1.0e-3
    air_density: float = 1.2
    grip: float = 20.0
    dt: float = 1.0 / 60.0
    substeps: int = 4

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"physics.{field.name}: must be a finite number, got {value!r}")
            if value <= 0:
                raise ValueError(f"physics.{field.name}: must be positive, got {value!r}")
        if not isinstance(self.substeps, int):
            raise ValueError(f"physics.substeps: must be an integer, got {self.substeps!r}")


def car_params(overrides: Mapping[str, Any] | CarParams | None = None) -> CarParams:
    """`CarParams` with the given fields replaced (plain YAML values: numbers, numeric strings)."""
    if isinstance(overrides, CarParams):
        return overrides
    if overrides is None:
        return CarParams()
    if not isinstance(overrides, Mapping):
        raise ValueError(f"physics: expected a mapping of CarParams fields, got {overrides!r}")
    names = [f.name for f in dataclasses.fields(CarParams)]
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in names:
            raise ValueError(f"physics: unknown field {key!r}; known fields are {names}")
        values[key] = _number(key, value)
    return CarParams(**values)


def _number(key: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"physics.{key}: must be a number, got {value!r}") from None
    if key == "substeps" and isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


def resistance(v: float, p: CarParams) -> float:
    """Rolling resistance plus air drag, N (opposes motion; zero at rest)."""
    if v <= 0.0:
        return 0.0
    return p.rolling_resistance * p.mass * GRAVITY + 0.5 * p.air_density * p.drag_area * v * v


def drive_force(u: float, v: float, p: CarParams) -> float:
    """Motor (u > 0) or brake (u < 0) force, N, for a throttle already clipped to [-1, 1]."""
    if u >= 0.0:
        return max(0.0, p.max_motor_force * (u - v / p.motor_speed))
    return u * p.max_brake_force if v > 0.0 else 0.0


def acceleration(u: float, v: float, p: CarParams) -> float:
    return (drive_force(u, v, p) - resistance(v, p)) / p.mass


def substep(v: float, u: float, h: float, p: CarParams) -> tuple[float, float]:
    """One semi-implicit Euler step of length `h`: the new speed and the distance covered.

    Brakes and resistance stop the car but never push it backwards, hence the clamp at zero.
    """
    v_new = max(0.0, v + acceleration(u, v, p) * h)
    return v_new, v_new * h


def terminal_speed(u: float, p: CarParams) -> float:
    """Speed where the motor force at throttle u balances resistance (solves the quadratic exactly)."""
    if u <= 0.0:
        return 0.0
    quad = 0.5 * p.air_density * p.drag_area
    lin = p.max_motor_force / p.motor_speed
    const = p.rolling_resistance * p.mass * GRAVITY - u * p.max_motor_force
    if const >= 0.0:
        return 0.0  # the motor cannot overcome rolling resistance
    return (-lin + math.sqrt(lin * lin - 4.0 * quad * const)) / (2.0 * quad)


def top_speed(p: CarParams) -> float:
    return terminal_speed(1.0, p)


def lateral_acceleration(v: float, kappa: float) -> float:
    return v * v * abs(kappa)


def deslots(v: float, kappa: float, p: CarParams) -> bool:
    """True when following the slot would need more lateral acceleration than the grip gives."""
    return lateral_acceleration(v, kappa) > p.grip
