"""A small reader of Dockerfile instructions and .dockerignore rules, enough for
the tests to hold deploy/Dockerfile and .dockerignore to what the image promises
(``docker build`` itself cannot run on the test machines)."""

from __future__ import annotations

import fnmatch
import json
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, else None."""
        text = self.argument.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        return [str(item) for item in value]


def instructions(path: Path) -> list[Instruction]:
    """Instructions in order, line continuations joined, comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, argument = line.partition(" ")
        found.append(Instruction(keyword.upper(), argument.strip()))
    return found


def stages(found: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by build stage (each begins with FROM)."""
    grouped: list[list[Instruction]] = []
    for instruction in found:
        if instruction.keyword == "FROM":
            grouped.append([])
        if grouped:
            grouped[-1].append(instruction)
    return grouped


def global_args(found: list[Instruction]) -> dict[str, str]:
    """ARGs declared before the first FROM, with their defaults."""
    args: dict[str, str] = {}
    for instruction in found:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, default = instruction.argument.partition("=")
            args[name.strip()] = default.strip()
    return args


def base_image(instruction: Instruction, args: dict[str, str]) -> str:
    """The image of a FROM line, with global ARG defaults substituted."""
    words = [w for w in shlex.split(instruction.argument) if not w.startswith("--")]
    image = words[0]
    for name, value in args.items():
        image = image.replace("${" + name + "}", value).replace("$" + name, value)
    return image


def ignored(patterns: list[str], path: str) -> bool:
    """Whether .dockerignore ``patterns`` keep ``path`` out of the build context:
    the last matching pattern wins, a pattern also covers what is under a folder it
    matches, ``!`` re-includes, ``**`` matches any number of folders."""
    result = False
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        pattern = pattern.strip("/")
        candidates = {pattern}
        if pattern.startswith("**/"):
            candidates.add(pattern[3:])
        if any(fnmatch.fnmatchcase(prefix, candidate)
               for prefix in prefixes for candidate in candidates):
            result = not negated
    return result


def dockerignore_patterns(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]
