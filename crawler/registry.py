"""The agency and portal registry: data in registry.toml, read into Portal records."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_REGISTRY = Path(__file__).with_name("registry.toml")
DEMO_PLACEHOLDER = "{demo}"
LEVELS = ("province", "city", "county", "department")
CMS_FAMILIES = ("trs", "hanweb", "generic")
# the [portal.params] each family reads (see crawler/adapters/*.py): any other is a typo
PARAMS: dict[str, set[str]] = {
    "trs": {"search_api", "channel_id", "search_channel", "page_size"},
    "hanweb": {"column_id", "unit_id", "web_id", "per_page", "group"},
    "generic": {"item_pattern", "next_text"},
}


@dataclass(frozen=True)
class Portal:
    id: str
    agency: str
    division_code: str
    level: str
    cms: str
    listing: tuple[str, ...]
    hosts: frozenset[str]
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def matches(self, code: str) -> bool:
        return code in (self.id, self.division_code)


class RegistryError(ValueError):
    pass


def registry_path() -> Path:
    return Path(os.environ.get("GONGKAI_REGISTRY", str(DEFAULT_REGISTRY)))


def host_of(url: str) -> str:
    """host[:port] as the registry writes it (lower case, default ports dropped)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return host if parts.port in (None, default_port) else f"{host}:{parts.port}"


def _fill(value: Any, demo_port: int | None) -> Any:
    if isinstance(value, str):
        return value.replace(DEMO_PLACEHOLDER, str(demo_port))
    if isinstance(value, list):
        return [_fill(v, demo_port) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, demo_port) for k, v in value.items()}
    return value


def _is_demo(entry: dict[str, Any]) -> bool:
    return DEMO_PLACEHOLDER in repr(entry)


def _check_types(entry: dict[str, Any]) -> None:
    """A TOML slip (an unquoted code, one host not in a list) named, rather than a TypeError or a set of characters."""
    name = entry.get("id", "?")
    for key in ("id", "agency", "division_code", "level", "cms"):
        if not isinstance(entry[key], str):
            raise RegistryError(f"portal {name}: {key} must be a string (in quotes), not {entry[key]!r}")
    listing = entry["listing"]
    if not (isinstance(listing, str) or (isinstance(listing, list) and listing and all(isinstance(u, str) for u in listing))):
        raise RegistryError(f"portal {name}: listing must be a URL or a list of URLs")
    hosts = entry["hosts"]
    if not (isinstance(hosts, list) and hosts and all(isinstance(h, str) for h in hosts)):
        raise RegistryError(f"portal {name}: hosts must be a list of host names, e.g. [\"www.example.gov.cn\"]")
    params = entry.get("params", {})
    if not isinstance(params, dict):
        raise RegistryError(f"portal {name}: params must be a table")
    unknown = sorted(set(params) - PARAMS.get(entry["cms"], set()))
    if unknown:
        known = ", ".join(sorted(PARAMS.get(entry["cms"], set()))) or "none"
        raise RegistryError(f"portal {name}: unknown {entry['cms']} params {', '.join(unknown)} (known: {known})")


def _portal(entry: dict[str, Any]) -> Portal:
    missing = [k for k in ("id", "agency", "division_code", "level", "cms", "listing", "hosts") if k not in entry]
    if missing:
        raise RegistryError(f"portal {entry.get('id', '?')}: missing {', '.join(missing)}")
    _check_types(entry)
    if entry["cms"] not in CMS_FAMILIES:
        raise RegistryError(f"portal {entry['id']}: unknown cms {entry['cms']!r} (known: {', '.join(CMS_FAMILIES)})")
    if entry["level"] not in LEVELS:
        raise RegistryError(f"portal {entry['id']}: unknown level {entry['level']!r}")
    if not (len(entry["division_code"]) == 6 and entry["division_code"].isdigit()):
        raise RegistryError(f"portal {entry['id']}: division_code must be 6 digits")
    listing = tuple(entry["listing"]) if isinstance(entry["listing"], list) else (entry["listing"],)
    hosts = frozenset(h.lower() for h in entry["hosts"])
    for url in listing:
        if host_of(url) not in hosts:
            raise RegistryError(f"portal {entry['id']}: listing {url} is not on one of its hosts")
    return Portal(
        id=entry["id"], agency=entry["agency"], division_code=entry["division_code"], level=entry["level"],
        cms=entry["cms"], listing=listing, hosts=hosts, params=dict(entry.get("params", {})),
    )


def load_registry(path: Path | None = None, *, demo_port: int | None = None, text: str | None = None) -> list[Portal]:
    """Every portal of the registry. Demo entries ({demo} in a URL) only when the demo portal's port is given."""
    raw = tomllib.loads(text) if text is not None else tomllib.loads((path or registry_path()).read_text("utf-8"))
    portals = []
    for entry in raw.get("portal", []):
        if _is_demo(entry):
            if demo_port is None:
                continue
            entry = _fill(entry, demo_port)
        portals.append(_portal(entry))
    ids = [p.id for p in portals]
    if len(ids) != len(set(ids)):
        raise RegistryError(f"duplicate portal ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    return portals


def select(portals: Iterable[Portal], codes: Iterable[str] | None) -> list[Portal]:
    """The portals named by id or division code (all when no codes are given)."""
    wanted = list(codes or [])
    chosen = [p for p in portals if not wanted or any(p.matches(c) for c in wanted)]
    if wanted and not chosen:
        raise RegistryError(f"no portal matches {', '.join(wanted)}")
    return chosen


def all_hosts(portals: Iterable[Portal]) -> frozenset[str]:
    return frozenset(h for p in portals for h in p.hosts)
