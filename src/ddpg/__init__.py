"""ddpg: deep deterministic policy gradient (Lillicrap et al. 2016), as a library and a command line.

from ddpg import DDPG, Config
agent = DDPG("Pendulum-v1", Config(total_steps=10_000))
agent.learn(run_dir="runs/pendulum")
"""

from ddpg.config import Config
from ddpg.envs import register_all as _register_envs
from ddpg.run.agent import DDPG

_register_envs()

__all__ = ["DDPG", "Config"]
__version__ = "0.1.0"
