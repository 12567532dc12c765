"""MCP prompts: prompts.yaml loaded into one frozen `Prompt` per job, checked against the
catalogue, and rendered with the user's arguments into one user message.

A mistake in prompts.yaml (a tool the catalogue lacks, a tool named in the text but not listed, a
placeholder without an argument, a duplicate name) stops the server, and fails a test, with a
message naming the prompt. As with tools.yaml, the server reads `prompts.json` beside it (no YAML
parser at run time): after changing prompts.yaml, `python -m relatel_mcp.core.prompts`.

What the user types goes into the text as data: cleaned of hidden characters, on one line, capped,
in «»; a date only as YYYY-MM-DD. A prompt that names a costly or destructive tool always ends
with the same words: the agent proposes, the user says yes, and a refusal is final.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import mcp.types as types

from . import catalog
from .sanitize import clean_text, quoted

ArgumentType = Literal["text", "date"]
TYPES: tuple[ArgumentType, ...] = ("text", "date")
# What an argument's value completes from, and the catalogue's list tool it is read with
# (upstream/directory.py reads it; a prompt whose argument completes from one lists that tool).
COMPLETES = {
    "employee": "list_employees",
    "group": "list_employee_groups",
    "reception": "list_receptions",
    "contact": "list_contacts",
    "voicemail": "list_voicemails",
}
MAX_VALUE = 200  # characters of one typed argument
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_BACKTICKED = re.compile(r"`([a-z][a-z0-9_]*)`")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_KEYS = {"name", "title", "description", "tools", "arguments", "text"}
_ARGUMENT_KEYS = {"name", "description", "required", "type", "completes", "absent"}
GATED = (
    "\n{tools}: propose each one and go ahead only when I say yes; the server then asks me to "
    "confirm it before anything is sent. If I say no, or the server refuses, leave that one and "
    "tell me: do not try it again, change it, or get the same done another way.\n"
)


class PromptsError(catalog.CatalogError):
    """prompts.yaml is inconsistent; the message names the prompt (and the command line reports it
    as it reports a broken catalogue: one line, no traceback)."""


class ArgumentError(ValueError):
    """The arguments a client sent for a prompt do not fit it; the message names the argument."""


@dataclass(frozen=True)
class Argument:
    name: str
    description: str
    required: bool
    type: ArgumentType = "text"
    completes: str | None = None  # a key of COMPLETES
    absent: str | None = None  # what {name} reads when an optional argument is not given

    def described(self) -> types.PromptArgument:
        return types.PromptArgument(name=self.name, description=self.description, required=self.required)

    def value(self, prompt: str, given: str | None) -> str:
        """What {name} reads in the text, from what the user typed (None: nothing)."""
        text = " ".join(clean_text(given).split()) if given is not None else ""
        if not text:
            if self.required:
                raise ArgumentError(f"{prompt} needs the argument {self.name}: {self.description}.")
            return self.absent or ""
        if self.type == "date":
            if not _DAY.fullmatch(text) or not _is_day(text):
                raise ArgumentError(
                    f"{prompt}: the argument {self.name} must be a day as YYYY-MM-DD (e.g. 2026-11-03), "
                    f"not {quoted(text, 40)}."
                )
            return text
        if len(text) > MAX_VALUE:
            raise ArgumentError(f"{prompt}: the argument {self.name} is longer than {MAX_VALUE} characters.")
        return quoted(text, MAX_VALUE + 2)


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Prompt:
    name: str
    title: str
    description: str
    tools: tuple[str, ...]  # every catalogue tool the text names
    arguments: tuple[Argument, ...]
    text: str
    gated: tuple[str, ...] = ()  # those of `tools` that are costly or destructive

    def described(self) -> types.Prompt:
        """The prompt as prompts/list gives it."""
        return types.Prompt(
            name=self.name,
            title=self.title,
            description=self.description,
            arguments=[a.described() for a in self.arguments],
        )

    def argument(self, name: str) -> Argument | None:
        return next((a for a in self.arguments if a.name == name), None)

    def render(self, arguments: Mapping[str, str] | None) -> types.GetPromptResult:
        """The prompt as prompts/get gives it: one user message, the arguments filled in."""
        given = dict(arguments or {})
        if unknown := sorted(set(given) - {a.name for a in self.arguments}):
            takes = ", ".join(a.name for a in self.arguments) or "none"
            names = ", ".join(quoted(name, 40) for name in unknown)
            raise ArgumentError(f"{self.name} has no argument {names}; its arguments: {takes}.")
        values = {a.name: a.value(self.name, given.get(a.name)) for a in self.arguments}
        text = _PLACEHOLDER.sub(lambda found: values[found[1]], self.text)
        if self.gated:
            text += GATED.format(tools=" and ".join(f"`{name}`" for name in self.gated))
        message = types.PromptMessage(role="user", content=types.TextContent(text=text))
        return types.GetPromptResult(description=self.description, messages=[message])


@cache
def load() -> tuple[Prompt, ...]:
    document = json.loads(resources.files(__package__).joinpath("prompts.json").read_text(encoding="utf-8"))
    return parse(document, catalog.load())


def parse(document: Any, operations: tuple[catalog.Operation, ...]) -> tuple[Prompt, ...]:
    entries = document.get("prompts") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise PromptsError("prompts.yaml: expected a non-empty list under 'prompts'")
    kinds = {op.name: op.kind for op in operations}
    prompts: list[Prompt] = []
    for index, entry in enumerate(entries):
        prompt = _prompt(index, entry, kinds)
        if any(p.name == prompt.name for p in prompts):
            raise PromptsError(f"prompts.yaml entry {index} ({prompt.name}): duplicate prompt name")
        prompts.append(prompt)
    return tuple(prompts)


def _prompt(index: int, entry: Any, kinds: Mapping[str, str]) -> Prompt:
    label = f"prompts.yaml entry {index}"
    if not isinstance(entry, dict):
        raise PromptsError(f"{label}: expected a mapping")
    label = f"{label} ({entry.get('name', '?')})"

    def fail(problem: str) -> PromptsError:
        return PromptsError(f"{label}: {problem}")

    if missing := _KEYS - entry.keys():
        raise fail(f"missing keys {sorted(missing)}")
    if unknown := entry.keys() - _KEYS:
        raise fail(f"unknown keys {sorted(unknown)}")
    if not _NAME.fullmatch(str(entry["name"])):
        raise fail("name must be snake_case")
    for key in ("title", "description", "text"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise fail(f"{key} must be a non-empty string")
    tools = entry["tools"]
    if not isinstance(tools, list) or not tools or len(set(tools)) != len(tools):
        raise fail("tools must be a non-empty list of distinct tool names")
    if strangers := [t for t in tools if t not in kinds]:
        raise fail(f"tools {strangers} are not in the catalogue (tools.yaml)")
    if not isinstance(entry["arguments"], list):
        raise fail("arguments must be a list")
    arguments = tuple(_argument(fail, spec, tools) for spec in entry["arguments"])
    names = [a.name for a in arguments]
    if len(set(names)) != len(names):
        raise fail(f"argument names must be unique: {names}")
    text = entry["text"]
    placeholders = set(_PLACEHOLDER.findall(text))
    if placeholders != set(names):
        raise fail(f"the text's placeholders {sorted(placeholders)} must be its arguments {sorted(names)}")
    verbs = {name.split("_")[0] for name in kinds}
    named = {word for word in _BACKTICKED.findall(text) if word in kinds or word.split("_")[0] in verbs}
    if unlisted := sorted(named - set(tools)):
        raise fail(f"the text names {unlisted}, which are not its tools (or not in the catalogue)")
    if unnamed := [t for t in tools if t not in named]:
        raise fail(f"tools {unnamed} are never named in the text (in backticks)")
    return Prompt(
        name=entry["name"],
        title=entry["title"].strip(),
        description=" ".join(entry["description"].split()),
        tools=tuple(tools),
        arguments=arguments,
        text=text,
        gated=tuple(t for t in tools if kinds[t] in ("costly", "destructive")),
    )


def _argument(fail: Any, spec: Any, tools: list[str]) -> Argument:
    if not isinstance(spec, dict):
        raise fail(f"argument {spec!r}: expected a mapping")
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise fail(f"argument {name!r}: name must be snake_case")
    if unknown := spec.keys() - _ARGUMENT_KEYS:
        raise fail(f"argument {name}: unknown keys {sorted(unknown)}")
    description, required = spec.get("description"), spec.get("required")
    kind, completes, absent = spec.get("type", "text"), spec.get("completes"), spec.get("absent")
    if not isinstance(description, str) or not description.strip():
        raise fail(f"argument {name}: description must be a non-empty string")
    if not isinstance(required, bool):
        raise fail(f"argument {name}: required must be true or false")
    if kind not in TYPES:
        raise fail(f"argument {name}: type must be one of {', '.join(TYPES)}")
    if completes is not None and (completes not in COMPLETES or kind != "text"):
        raise fail(f"argument {name}: completes must be one of {', '.join(COMPLETES)}, for a text argument")
    if completes is not None and COMPLETES[completes] not in tools:
        raise fail(f"argument {name}: completes from {COMPLETES[completes]}, which is not among its tools")
    if required == (absent is not None) or (absent is not None and not str(absent).strip()):
        raise fail(
            f"argument {name}: an optional argument says what it reads when absent, a required one not"
        )
    return Argument(name, description.strip(), required, kind, completes, absent)


def main() -> None:
    """Check prompts.yaml against the catalogue and write it as prompts.json, which the server reads."""
    import yaml  # PyYAML, a development dependency

    here = Path(__file__).parent
    try:
        document = yaml.safe_load((here / "prompts.yaml").read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PromptsError(f"prompts.yaml is not valid YAML: {exc}") from None
    print(f"{len(parse(document, catalog.load()))} prompts checked", file=sys.stderr)
    (here / "prompts.json").write_text(
        json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {here / 'prompts.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
