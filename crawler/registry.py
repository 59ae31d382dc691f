"""The agency and portal registry: data in registry.toml, validated by models that refuse unknown keys
(one per CMS family for [portal.params]; crawler/registry_file.py), read into Portal records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gongkai.crawler.urls import parse as parse_url

DEFAULT_REGISTRY = Path(__file__).with_name("registry.toml")
DEMO_PLACEHOLDER = "{demo}"
_VALIDATION_PORT = 1  # fills {demo} when the demo is not running: its entries are checked, then skipped


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
    # starter entries (registry-starter.toml): not yet confirmed by a crawl or `portals check`, and why we think so
    verified: bool = True
    evidence: str = field(default="", compare=False)
    missing: str = field(default="", compare=False)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def matches(self, code: str) -> bool:
        return code in (self.id, self.division_code)


class RegistryError(ValueError):
    """The registry file is malformed; one line naming the file, the portal and the key."""


def registry_path() -> Path:
    """The shipped registry; another one is given by the caller (GONGKAI_REGISTRY is read by gongkai.settings)."""
    return DEFAULT_REGISTRY


def host_of(url: str) -> str:
    """host[:port] as the registry writes it, judged by the fetcher's own parser (IPv6 in brackets, default port
    dropped): a listing URL the fetcher would refuse is refused here, at load, with its reason."""
    return parse_url(url).key


def _fill(value: Any, demo_port: int) -> Any:
    if isinstance(value, str):
        return value.replace(DEMO_PLACEHOLDER, str(demo_port))
    if isinstance(value, list):
        return [_fill(v, demo_port) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, demo_port) for k, v in value.items()}
    return value


def load_registry(path: Path | None = None, *, demo_port: int | None = None, text: str | None = None) -> list[Portal]:
    """Every portal of the registry. Demo entries ({demo} in a URL) only when the demo portal's port is given.

    The whole file is validated, demo entries too: a RegistryError names the file, the portal and the key.
    """
    # the file's models (pydantic) imported here, not with this module: a crawler process needs Portal, not them
    from gongkai.crawler.registry_file import RegistryFile
    from gongkai.schema.datafile import read_toml, shown, validate

    path = path or registry_path()
    source = "<registry text>" if text is not None else shown(path)
    raw = read_toml(path, RegistryError, text)
    entries = raw.get("portal", [])
    demo = [DEMO_PLACEHOLDER in repr(e) for e in entries] if isinstance(entries, list) else []
    filled = _fill(raw, _VALIDATION_PORT if demo_port is None else demo_port)
    specs = validate(RegistryFile, filled, source, RegistryError, {"portal": "portal"}).portal
    ids = [s.id for s in specs]
    if len(ids) != len(set(ids)):
        raise RegistryError(f"{source}: duplicate portal ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    return [
        Portal(
            id=s.id, agency=s.agency, division_code=s.division_code, level=s.level, cms=s.cms,
            listing=tuple(s.listing), hosts=frozenset(s.hosts), params=s.params.model_dump(exclude_unset=True),
            verified=s.verified, evidence=s.evidence, missing=s.missing,
        )
        for s, is_demo in zip(specs, demo, strict=True)
        if demo_port is not None or not is_demo
    ]


def select(portals: Iterable[Portal], codes: Iterable[str] | None) -> list[Portal]:
    """The portals named by id or division code (all when no codes are given)."""
    wanted = list(codes or [])
    chosen = [p for p in portals if not wanted or any(p.matches(c) for c in wanted)]
    if wanted and not chosen:
        raise RegistryError(f"no portal matches {', '.join(wanted)}")
    return chosen


def all_hosts(portals: Iterable[Portal]) -> frozenset[str]:
    return frozenset(h for p in portals for h in p.hosts)


def split_by_host(portals: list[Portal], shards: int) -> list[list[Portal]]:
    """Portals in at most `shards` groups (the shards of flows/shards.py, the processes of crawler/processes.py): portals sharing a host always together (politeness is per host), groups
    balanced by number of portals (largest host groups first, each to the emptiest shard), the same split for the
    same registry. Fewer host groups than shards: fewer shards."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    owner: dict[str, str] = {}  # union-find over hosts: a portal with two hosts joins their groups

    def root(host: str) -> str:
        while owner.setdefault(host, host) != host:
            owner[host] = owner[owner[host]]
            host = owner[host]
        return host

    for portal in portals:
        hosts = sorted(portal.hosts)
        for other in hosts[1:]:
            a, b = root(hosts[0]), root(other)
            if a != b:
                owner[max(a, b)] = min(a, b)
    groups: dict[str, list[Portal]] = {}
    for portal in portals:
        key = root(min(portal.hosts)) if portal.hosts else f"portal:{portal.id}"
        groups.setdefault(key, []).append(portal)
    buckets: list[list[Portal]] = [[] for _ in range(shards)]
    for _, group in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        emptiest = min(range(shards), key=lambda i: (len(buckets[i]), i))
        buckets[emptiest].extend(group)
    return [sorted(b, key=lambda p: p.id) for b in buckets if b]
