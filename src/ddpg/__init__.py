"""DDPG: deep deterministic policy gradient."""
