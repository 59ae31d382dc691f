"""Agency identity: the keys under which two printed names are one agency (rules in agency_names.toml).

`identity_key` drops what never tells two agencies apart (a province prefix before a place name,
人民政府 / 管委会 …); `city_key` also drops a city prefix and is trusted only when it names one agency.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gongkai.extractors.textnorm import fold

RULES_FILE = Path(__file__).parent / "agency_names.toml"
PROVINCES_FILE = Path(__file__).parent / "provinces.toml"


def name_key(name: str) -> str:
    """Agency names compare after full-width folding and with all white space removed."""
    return "".join(fold(name).split())


@dataclass(frozen=True)
class NameRules:
    suffixes: tuple[str, ...]
    provinces: tuple[str, ...]
    place_start: re.Pattern[str]
    city_prefix: re.Pattern[str]
    min_chars: int


@cache
def rules() -> NameRules:
    with RULES_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    with PROVINCES_FILE.open("rb") as fh:
        # 北京市朝阳区 keeps 北京市: a municipality's districts are named like a city's (长春市朝阳区).
        provinces = [names[0] for names in tomllib.load(fh)["provinces"].values() if not names[0].endswith("市")]
    return NameRules(
        suffixes=tuple(sorted(data["same_body_suffixes"], key=len, reverse=True)),
        provinces=tuple(sorted(provinces, key=len, reverse=True)),
        place_start=re.compile(data["place_start"]),
        city_prefix=re.compile(data["city_prefix"]),
        min_chars=int(data["min_chars"]),
    )


def identity_key(name: str) -> str:
    """福建省平潭综合实验区管理委员会 → 平潭综合实验区; 上海市人民政府办公厅 stays as it is."""
    r = rules()
    key = name_key(name)
    for suffix in r.suffixes:
        if key.endswith(suffix) and len(key) - len(suffix) >= r.min_chars:
            key = key[: -len(suffix)]
            break
    for province in r.provinces:
        rest = key[len(province):]
        if key.startswith(province) and len(rest) >= r.min_chars and r.place_start.match(rest):
            return rest
    return key


def city_key(name: str) -> str | None:
    """The identity key without its city prefix (淮安市洪泽区 → 洪泽区), None when it has none."""
    r = rules()
    key = identity_key(name)
    match = r.city_prefix.match(key)
    if match is None:
        return None
    rest = key[match.end():]
    return rest if len(rest) >= r.min_chars and r.place_start.match(rest) else None
