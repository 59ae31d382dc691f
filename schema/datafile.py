"""Validated data files: pydantic models that refuse unknown keys, and one-line errors that name the slip.

A data file (schema/data/*.toml, the crawler's registry) is read with tomllib and validated by a model whose
every level forbids keys it does not declare. The first error becomes one line naming the file, the entry
(`check requests.balance`, `table requests row granted`, `portal pingtan`) and the key, with the nearest valid
key as a suggestion: `schema/data/checks.toml: check requests.balance: unknown key 'mnus' (did you mean 'minus'?)`.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

M = TypeVar("M", bound=BaseModel)
PACKAGE = Path(__file__).resolve().parent.parent  # the gongkai package: files inside it are shown relative to it


class DataModel(BaseModel):
    """One level of a data file. TOML values are typed already, so nothing is coerced (strict)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    # how an unknown key is named in errors; the registry's params say "unknown trs params x" (its older wording)
    unknown_key: ClassVar[str] = "key {key!r}"

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        """extra="forbid" refuses them too; this one names the nearest valid key as well."""
        if isinstance(data, Mapping):
            known = [field.alias or name for name, field in cls.model_fields.items()]
            for key in data:
                if key not in known:
                    raise PydanticCustomError("unknown_key", "unknown {what}{hint}", {
                        "what": cls.unknown_key.format(key=key), "hint": did_you_mean(str(key), known)})
        return data


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'minus'?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def shown(path: Path) -> str:
    """A shipped file relative to the package (schema/data/checks.toml), any other file as given."""
    try:
        return str(path.resolve().relative_to(PACKAGE))
    except ValueError:
        return str(path)


def read_toml(path: Path, error: type[Exception], text: str | None = None) -> dict[str, Any]:
    try:
        return tomllib.loads(text if text is not None else path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{shown(path)}: {exc}") from exc


def validate(
    model: type[M], raw: Any, source: str, error: type[Exception], nouns: Mapping[str, str], entry: str = ""
) -> M:
    """`raw` as `model`, or `error` naming source, entry and key of the first problem.

    `nouns` names the entries of list fields: {"rule": "check"} makes item 3 of `rule` "check <its name>".
    """
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = sorted(exc.errors(), key=lambda e: e["type"] != "unknown_key")  # a typo explains a missing key
        raise error(describe(problems[0], raw, source, nouns, entry)) from None


def describe(problem: Mapping[str, Any], raw: Any, source: str, nouns: Mapping[str, str], entry: str = "") -> str:
    """One line for one pydantic error: follow its location through the raw data to name entry and key."""
    entries = [entry] if entry else []
    path: list[str] = []
    node, field = raw, ""
    for step in problem["loc"]:
        if isinstance(node, Sequence) and not isinstance(node, str) and isinstance(step, int) and step < len(node):
            node = node[step]
            if field in nouns:
                entries.append(f"{nouns[field]} {_name(node, step)}")
                path = []
                continue
            path.append(str(step))
        elif isinstance(node, Mapping) and step in node:
            node, field = node[step], str(step)
            if field not in nouns:
                path.append(field)
        # any other step is a union's tag (`column_sum`), not a place in the file
    return ": ".join([source, *([" ".join(entries)] if entries else []), _message(problem, ".".join(path))])


def _name(item: Any, index: int) -> str:
    if isinstance(item, Mapping):
        for key in ("name", "key", "id"):
            if isinstance(item.get(key), str | int):
                return str(item[key])
    return f"#{index + 1}"


def _message(problem: Mapping[str, Any], key: str) -> str:
    kind, ctx = problem["type"], problem.get("ctx") or {}
    if kind == "unknown_key":
        return f"unknown {ctx['what']}{ctx['hint']}"
    if kind == "missing":
        return f"missing key {key!r}"
    if kind == "value_error":
        return f"{key} {ctx['error']}" if key else str(ctx["error"])
    if kind == "union_tag_not_found":
        return f"missing key {ctx['discriminator']}"
    if kind == "union_tag_invalid":
        return f"{ctx['discriminator'].strip(chr(39))} {ctx['tag']!r} is not one of {ctx['expected_tags']}"
    if kind == "string_type":
        return f"{key} must be a string (in quotes), not {problem['input']!r}"
    got = repr(problem["input"])
    return f"{key + ': ' if key else ''}{problem['msg']} (got {got if len(got) <= 80 else got[:77] + '...'})"
