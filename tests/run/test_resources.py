import os

from ddpg.run import resources as guards


def test_usable_cpus_counts_the_affinity_mask_not_the_whole_machine(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert guards.usable_cpus() == 3


def test_usable_cpus_falls_back_to_the_cpu_count_without_an_affinity_mask(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert guards.usable_cpus() == 6


def test_usable_cpus_is_one_when_the_os_cannot_count(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert guards.usable_cpus() == 1
