"""Environments shipped with ddpg, registered with Gymnasium on import."""
