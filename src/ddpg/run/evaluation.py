"""Deterministic evaluation episodes and videos.

Episode i of an evaluation always starts from `reset(seed=seed + i)`, so an evaluation is a function of
the policy alone: two evaluations of the same weights give the same returns, before or after a resume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from ddpg.envs import CheckedEnv, EnvFailure
from ddpg.files import atomic_file


@dataclass(frozen=True)
class EvalResult:
    returns: list[float]
    lengths: list[int]
    info_means: dict[str, float] = field(default_factory=dict)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns)) if self.returns else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "mean_return": self.mean_return,
            "std_return": self.std_return,
            "episodes": len(self.returns),
            "returns": self.returns,
            "lengths": self.lengths,
            "info_means": self.info_means,
        }


def evaluate(
    act: Callable[[np.ndarray], np.ndarray],
    env: gym.Env,
    episodes: int,
    seed: int,
    video_path: Path | str | None = None,
    video_episodes: int | None = None,
    name: str = "",
) -> EvalResult:
    """Run `episodes` episodes with the deterministic policy `act` (observation → env action).

    An environment that raises, or returns an observation its space does not allow, raises `EnvFailure`
    naming it (`name`), the call and the step.

    With `video_path`, frames of the first `video_episodes` episodes (all when None) are written there;
    the env must have been made with `render_mode="rgb_array"`.
    """
    video_path = Path(video_path) if video_path is not None else None
    returns, lengths, finals = [], [], []
    frames: list[np.ndarray] = []
    record = video_episodes if video_episodes is not None else episodes
    checked = CheckedEnv(env)
    for i in range(episodes):
        with _failing(name, f"of evaluation episode {i + 1}"):
            obs, info = checked.reset(seed=seed + i)
        filming = video_path is not None and i < record
        if filming:
            frames.append(_frame(env))
        total, length, done = 0.0, 0, False
        while not done:
            action = act(obs)
            with _failing(name, f"at step {length + 1} of evaluation episode {i + 1}"):
                obs, reward, terminated, truncated, info = checked.step(action)
            total += float(reward)
            length += 1
            done = terminated or truncated
            if filming:
                frames.append(_frame(env))
        returns.append(total)
        lengths.append(length)
        finals.append(info)
    if video_path is not None:
        write_video(video_path, frames, env.metadata.get("render_fps") or 30)
    return EvalResult(returns, lengths, info_means(finals))


@contextmanager
def _failing(name: str, where: str) -> Iterator[None]:
    try:
        yield
    except EnvFailure as e:
        raise EnvFailure(f"environment '{name or 'the environment'}' failed {where} {e}") from None


def _frame(env: gym.Env) -> np.ndarray:
    # A `render_mode="rgb_array"` env renders one (H, W, 3) array per call.
    return np.asarray(env.render())


def info_means(infos: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each finite numeric scalar that appears in every episode's final info."""
    if not infos:
        return {}
    keys = set.intersection(*(set(i) for i in infos))
    means = {}
    for key in sorted(keys):
        values = [i[key] for i in infos]
        if all(isinstance(v, Real | np.number) and not isinstance(v, bool) for v in values):
            arr = np.asarray(values, dtype=np.float64)
            if np.all(np.isfinite(arr)):
                means[key] = float(arr.mean())
        elif all(isinstance(v, bool | np.bool_) for v in values):
            means[key] = float(np.mean(values))
    return means


def write_video(path: Path | str, frames: list[np.ndarray], fps: int) -> None:
    """MP4 (H.264 through imageio-ffmpeg) or GIF, chosen by the suffix."""
    import imageio.v3 as iio

    path = Path(path)
    if not frames or frames[0] is None:
        raise ValueError("the environment returned no frames to record")
    with atomic_file(path) as tmp:
        if path.suffix.lower() == ".gif":
            iio.imwrite(tmp, np.stack(frames), duration=1000 / fps, loop=0)
        else:
            video = np.stack(frames)
            # H.264 in yuv420p needs even sides; pad by a pixel rather than let the writer rescale.
            h, w = video.shape[1:3]
            video = np.pad(video, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            iio.imwrite(
                tmp,
                video,
                fps=fps,
                codec="libx264",
                plugin="FFMPEG",
                macro_block_size=2,
                ffmpeg_log_level="error",
            )


class InlineVideo:
    """A recorded video that Jupyter shows inline (it renders objects with `_repr_html_`), without
    the library depending on IPython. `path` is the file on disk."""

    MIME: ClassVar[dict[str, str]] = {".mp4": "video/mp4", ".gif": "image/gif"}

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _repr_html_(self) -> str:
        import base64

        data = base64.b64encode(self.path.read_bytes()).decode("ascii")
        mime = self.MIME.get(self.path.suffix.lower(), "video/mp4")
        if mime.startswith("image/"):
            return f'<img src="data:{mime};base64,{data}"/>'
        return f'<video controls loop autoplay muted src="data:{mime};base64,{data}"></video>'

    def __repr__(self) -> str:
        return f"InlineVideo({str(self.path)!r})"
