"""ddpg: deep deterministic policy gradient (Lillicrap et al. 2016), as a library and a command line.

from ddpg import DDPG, Config
agent = DDPG("Pendulum-v1", Config(total_steps=10_000))
agent.learn(run_dir="runs/pendulum")
"""

from .config import Config
from .envs import register_all as _register_envs
from .trainer import DDPG

_register_envs()

__all__ = ["DDPG", "Config"]
__version__ = "0.1.0"
