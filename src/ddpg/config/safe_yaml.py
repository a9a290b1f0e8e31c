"""YAML as config data, from files that may be hostile: bounded in size, in what aliases expand to
and in depth, and read only from regular files.

A config file or a preset may be anything a path can name: a FIFO (reading it would wait forever), a
link to /dev/zero (reading it would never end), or a small file whose aliases expand to billions of
values (`a: &a [x, x]`, `b: &b [*a, *a]`, …): PyYAML builds that as shared lists quickly, and the first
deep copy or dump of the config would then exhaust memory. Each is refused as a `ConfigError`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from ddpg.config.sections import ConfigError

MAX_BYTES = 1 << 20  # a config file or preset larger than 1 MiB is not one
MAX_VALUES = 100_000  # values in a document, each alias counted as the values it stands for


class BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that counts the values of the document as they would be after expanding every
    alias, and refuses a document that would exceed `MAX_VALUES` or whose alias refers to itself."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._expanded: dict[int, int] = {}  # id(node) → values under it, aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        alias = self.check_event(yaml.AliasEvent)
        node = super().compose_node(parent, index)
        if alias:  # a node composed before, or still being composed: one that contains itself
            if id(node) not in self._expanded:
                raise yaml.YAMLError("an alias refers to the value it is inside of")
            return node
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        size = 1
        for child in children:
            size += self._expanded[id(child)]
        if size > MAX_VALUES:
            raise yaml.YAMLError(
                f"it expands to more than {MAX_VALUES} values (aliases counted each time they are used)"
            )
        self._expanded[id(node)] = size
        return node


def parse_yaml(text: str) -> Any:
    """`text` as plain data, within the bounds above; raises yaml.YAMLError (too large or deep too)."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise yaml.YAMLError("it is nested too deeply") from None
    except ValueError as e:  # a value the constructors cannot make, e.g. an integer of 5000 digits
        raise yaml.YAMLError(
            str(e).splitlines()[0][:100] if str(e) else "a value that cannot be read"
        ) from None
    finally:
        loader.dispose()


def read_config_text(path: Path) -> str:
    """The text of a config file or preset: a regular file (after following links) of at most
    `MAX_BYTES`, in UTF-8. Opened without blocking, so a FIFO is refused rather than waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ConfigError(f"{path} is not a regular file ({_kind(mode)}); give a YAML file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_BYTES + 1)
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_BYTES // 2**20} MiB; a config file is not")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"
