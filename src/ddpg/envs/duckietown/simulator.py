"""gym-duckietown's `Simulator`, imported on first use and made to run on today's numpy, deterministically.

The simulator (`duckietown-gym-daffy` 6.1.34, 2022, unmaintained) needs three fixes. Each is made here, in
a subclass or for the duration of one of its calls, never by editing the installed package:

1. duckietown-world's differential-drive model computes (2, 1) accelerations, so the velocities it passes
   to geometry's `se2_from_linear_angular` are size-1 arrays, of which numpy >= 1.24 refuses to make an
   array (ValueError on the first step): while our simulator steps, that function gets floats.
2. Domain randomisation scales the camera's height, angle and field of view by size-1 arrays, which
   ctypes refuses to pass to gluPerspective (ArgumentError when the simulator is made): they are floats.
3. `reset()` places the light under whatever modelview matrix the previous frame left, so the same seed
   gave different images: the matrix is the identity before every reset.

And one for speed: while it resets, the simulator finds each tile's texture file once, not every time.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np

from ddpg.envs import EnvError

# The simulator's own packages pin networkx<3 and PyOpenGL==3.1.0 (downgrading what torch and MuJoCo use)
# for code it does not run: they go in without dependencies, and the `duckietown` extra is what they need.
INSTALL = (
    "pip install 'ddpg[duckietown]' && pip install --no-deps duckietown-gym-daffy==6.1.34 "
    "duckietown-world-daffy==6.4.3 aido-protocols-daffy==6.1.1 zuper-nodes-z6==6.2.17"
)
GL_LIBRARIES = "apt-get install libegl1 libgl1 libglu1-mesa libegl-mesa0 libgl1-mesa-dri libglib2.0-0"
RANDOMISED_CAMERA = ("camera_height", "camera_angle", "camera_fov_y")


def missing() -> str | None:
    """Why Duckietown-v0 cannot be made here (the extra or the GL libraries are missing), or None."""
    try:
        load()
    except EnvError as e:
        return str(e)
    return None


@cache
def load() -> type:
    """The patched `Simulator` class: the first call imports gym-duckietown (a second or so)."""
    # pyglet checks every GL call for an error unless told not to: 40-54 against ~80 steps/s at 120x160.
    os.environ.setdefault("PYGLET_DEBUG_GL", "0")
    try:
        # gym_duckietown prints pyglet's options and old gym its deprecation notice on import: neither is
        # ours to show. It must be imported before `geometry`, which it configures.
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")  # its dependencies' deprecations, not the user's to fix
            # isort: off
            import gym_duckietown.simulator as simulator
            import geometry
            from pyglet import gl

            # isort: on
    except ModuleNotFoundError as e:
        raise EnvError(f"Duckietown-v0 needs gym-duckietown (missing module '{e.name}'): {INSTALL}") from None
    except (ImportError, OSError) as e:  # cv2 and pyglet load libGL and libEGL when imported
        raise EnvError(f"Duckietown-v0 needs the EGL and GL libraries ({e}): {GL_LIBRARIES}") from None
    for name in ("gym-duckietown", "duckietown_world", "commons", "dt-world", "zuper_typing", "geometry"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return _patched(simulator, geometry, gl)


def _patched(module: Any, geometry: Any, gl: Any) -> type:
    se2_from_linear_angular = geometry.se2_from_linear_angular
    texture_file = module.get_texture_file
    cached_texture_file = cache(texture_file)

    def from_floats(linear: Any, angular: Any) -> Any:
        return se2_from_linear_angular([_float(v) for v in linear], _float(angular))

    @contextlib.contextmanager
    def float_velocities() -> Iterator[None]:
        geometry.se2_from_linear_angular = from_floats
        try:
            yield
        finally:
            geometry.se2_from_linear_angular = se2_from_linear_angular

    class Simulator(module.Simulator):
        """gym-duckietown's simulator with the three fixes (module docstring)."""

        @property
        def randomization_settings(self) -> dict[str, Any]:
            return self._settings

        @randomization_settings.setter
        def randomization_settings(self, settings: dict[str, Any]) -> None:
            self._settings = {k: _float(v) if k in RANDOMISED_CAMERA else v for k, v in settings.items()}

        def reset(self, segment: bool = False) -> Any:
            gl.glMatrixMode(gl.GL_MODELVIEW)
            gl.glLoadIdentity()
            # Each reset looks up every tile's texture among the package's files: 0.6 of its 0.7 s.
            module.get_texture_file = cached_texture_file
            try:
                return super().reset(segment=segment)
            finally:
                module.get_texture_file = texture_file

        def step(self, action: Any) -> Any:
            with float_velocities():
                return super().step(action)

    return Simulator


def map_names() -> list[str]:
    """The maps the simulator ships, by name."""
    load()
    from duckietown_world.resources import list_maps2

    return sorted(list_maps2())


def _float(value: Any) -> float:
    """A number, or a size-1 array of one, as a float."""
    return float(np.asarray(value).reshape(-1)[0])


def make_simulator(**kwargs: Any) -> Any:
    """A patched simulator; its OpenGL context stays current until another simulator is made or used."""
    simulator_class = load()
    try:
        # Construction renders a first frame: any GL failure (no EGL device, no driver) surfaces here.
        with contextlib.redirect_stdout(io.StringIO()):
            return simulator_class(**kwargs)
    except Exception as e:
        if "pyglet" in type(e).__module__ or "GL" in type(e).__name__ or "EGL" in str(e):
            raise EnvError(f"Duckietown-v0 cannot open an OpenGL context ({e}): {GL_LIBRARIES}") from None
        raise
