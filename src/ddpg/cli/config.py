"""`ddpg config`: the configuration `ddpg train` would run with, or every field there is."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re

import yaml

from ddpg.cli.shared import add_overrides, positive, resolved_config, seed

# A field line of a section's source: `name: type = default  # what it is`.
# A field's line: `name: type`, a default or not, a comment or not (no field's type holds a "#").
FIELD = re.compile(r"^\s{4}(\w+): [^=#]+(?:=[^#]*)?(?:#\s*(.*))?$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "config",
        help="print the resolved config as YAML, or list every field",
        description="The config `ddpg train` would use with the same --env, --preset, --steps, --seed, "
        "--algo and --set, as YAML (what a run's config.yaml holds): an env without a preset of its own "
        "gets the `default` preset. --fields lists every field: its section key, its flat key (what --set "
        "takes), its default under every preset (the paper's value) and what it is.",
    )
    p.add_argument("--env", help="Gymnasium id or package.module:ClassName (default: the preset's)")
    p.add_argument("--preset", help="preset name (see `ddpg envs`) or a YAML file")
    p.add_argument("--steps", type=positive, help="total environment steps, as ddpg train --steps")
    p.add_argument("--seed", type=seed, help="random seed, as ddpg train --seed")
    p.add_argument(
        "--algo",
        choices=("ddpg", "td3", "td7"),
        help="ddpg, td3 or td7 (default: the preset's; ddpg where it names none; td3 in `default`)",
    )
    add_overrides(p, "KEY=VALUE", "override config fields, as ddpg train --set does")
    p.add_argument("--fields", action="store_true", help="list every field instead")
    p.set_defaults(func=cmd_config)


def cmd_config(args: argparse.Namespace) -> int:
    from ddpg.config import Config, config_yaml, flatten
    from ddpg.config.sections import SECTIONS, flat_key

    if args.fields:
        defaults = flatten(Config().to_dict())  # DDPG's: --algo td3 or td7 changes their switches
        rows = []
        for section, cls in SECTIONS.items():
            notes = field_notes(cls)
            for f in dataclasses.fields(cls):
                flat = flat_key(f)
                rows.append((f"{section}.{f.name}", flat, yaml_value(defaults[flat]), notes.get(f.name, "")))
        # Columns two spaces apart at least; a value is as --set takes it (null, true, [64, 64]).
        widths = [max(len(row[i]) for row in rows) for i in (0, 1)] + [16]
        for row in rows:
            print(("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3]).rstrip())
        return 0
    config = resolved_config(args)
    print(config_yaml(config), end="")
    return 0


def yaml_value(value: object) -> str:
    """`value` as one line of YAML, the way --set parses it back."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 16)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def field_notes(cls: type) -> dict[str, str]:
    """Each field's comment in the section's source: on its line, else the comment lines above it."""
    notes, above = {}, []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        match = FIELD.match(line)
        if match:
            notes[match.group(1)] = match.group(2) or " ".join(above)
        above = []
    return notes
