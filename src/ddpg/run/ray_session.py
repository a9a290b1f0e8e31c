"""The Ray session ddpg starts and stops (embedded) or joins (`--address`): for sweeps, tuning and the
actors that collect experience for one run (run/actors.py)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ddpg
from ddpg.run.resources import usable_cpus


def ray_available() -> bool:
    try:
        import ray.tune  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def answers(address: str, timeout: float = 5.0) -> None:
    """A ConnectionError unless something listens at a HOST:PORT `address` (Ray itself would keep
    retrying for minutes); `auto` and other forms are left to Ray."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {address}: {e.strerror or e}") from None


@contextmanager
def ray_session(address: str | None) -> Iterator[str]:
    """Connect to `address`, or start a quiet embedded Ray whose files all live in one temporary
    directory (sockets, logs, its auth token) that is removed afterwards; nothing goes to the home."""
    import logging

    quiet = {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AIR_NEW_OUTPUT": "0",
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    }
    if address is not None:
        answers(address)
        with environ(quiet):
            import ray

            # Ship this ddpg to the cluster's workers, so they run the driver's version of the code
            # (torch, gymnasium and the other dependencies must be installed on every node).
            package = str(Path(ddpg.__file__).resolve().parent)
            ray.init(
                address=address,
                log_to_driver=False,
                logging_level=logging.ERROR,
                runtime_env={"py_modules": [package]},
            )
            try:
                yield f"Ray cluster at {address} ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"
            finally:
                ray.shutdown()
        return
    # The system temp dir, not the sweep directory: Ray's socket paths must stay under ~107 characters.
    tmp = Path(tempfile.mkdtemp(prefix="ddpg-ray-"))
    token = tmp / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    session = {
        **quiet,
        "RAY_TMPDIR": str(tmp),
        # Ray otherwise writes a token to ~/.ray/auth_token; keep token auth on, with our own token.
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
    }
    try:
        with environ(session):
            import ray

            _refresh_ray_auth()
            cpus = usable_cpus()
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                _temp_dir=str(tmp),
            )
            try:
                yield f"embedded Ray ({cpus} CPUs)"
            finally:
                ray.shutdown()
        _refresh_ray_auth()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _refresh_ray_auth() -> None:
    # Ray caches its auth settings and token per process; re-read them after changing the environment.
    try:
        from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]
        from ray._raylet import Config as RayConfig  # type: ignore[attr-defined]
    except ImportError:  # a Ray without token authentication
        return
    RayConfig.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()
