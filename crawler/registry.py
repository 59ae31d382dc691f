"""The agency and portal registry: data in registry.toml, validated by models that refuse unknown keys
(one per CMS family for [portal.params]), read into Portal records."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from gongkai.crawler.urls import parse as parse_url
from gongkai.schema.datafile import DataModel, read_toml, shown, validate

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


# --- [portal.params]: the keys each CMS family reads (crawler/adapters/*.py); any other is a typo -----------------

Id = str | int  # ids copied from a page's script, quoted or not; the adapters send them as text


class TrsParams(DataModel):
    unknown_key: ClassVar[str] = "trs params {key}"
    search_api: str | None = None  # path of the search API that serves later listing pages
    channel_id: Id | None = None  # classsql: "chnlid=…"
    search_channel: Id | None = None  # searchId
    page_size: PositiveInt | None = None


class HanwebParams(DataModel):
    unknown_key: ClassVar[str] = "hanweb params {key}"
    column_id: Id | None = None
    unit_id: Id | None = None
    web_id: Id | None = None
    per_page: PositiveInt | None = None
    group: PositiveInt | None = None  # records per dataproxy request


class GenericParams(DataModel):
    unknown_key: ClassVar[str] = "generic params {key}"
    item_pattern: str | None = None  # a regular expression a report link's URL matches
    next_text: str | None = None  # the next-page link's text (下一页)

    @field_validator("item_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        try:
            re.compile(value or "")
        except re.error as exc:
            raise ValueError(f"is not a regular expression: {exc}") from exc
        return value


class UcapParams(DataModel):
    unknown_key: ClassVar[str] = "ucap params {key}"
    page_offset: Literal[0, 1] | None = None  # page n is <name>_{n - offset}.shtml


class GkmlptParams(DataModel):
    unknown_key: ClassVar[str] = "gkmlpt params {key}"
    category: Id | None = None  # /gkmlpt/api/all/<category>
    sid: Id | None = None  # the site id (SID: '…' in the site's pages)
    page_size: PositiveInt | None = None


# --- [[portal]] ---------------------------------------------------------------------------------------------------

class _PortalSpec(DataModel):
    id: str
    agency: str
    division_code: str = ""  # empty only where none applies (a ministry, a development zone): said in `missing`
    level: Literal["province", "city", "county", "department", "ministry"]
    listing: list[str]
    hosts: list[str]
    verified: bool = True  # false: a starter entry nobody has crawled yet
    evidence: str = ""  # what the entry rests on (a page seen, public crawler code, a mirror)
    confidence: str = ""
    missing: str = ""  # what must be confirmed or found before it can run

    @field_validator("listing", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        urls = [value] if isinstance(value, str) else value
        if not (isinstance(urls, list) and urls and all(isinstance(u, str) for u in urls)):
            raise ValueError("must be a URL or a list of URLs")
        return urls

    @field_validator("hosts", mode="before")
    @classmethod
    def _host_names(cls, value: Any) -> Any:
        if not (isinstance(value, list) and value and all(isinstance(h, str) for h in value)):
            raise ValueError('must be a list of host names, e.g. ["www.example.gov.cn"]')
        return [h.lower() for h in value]

    @field_validator("division_code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        if value and not (len(value) == 6 and value.isdigit()):
            raise ValueError("must be 6 digits")
        return value

    @model_validator(mode="after")
    def _listing_on_hosts(self) -> _PortalSpec:
        for url in self.listing:
            if host_of(url) not in self.hosts:
                raise ValueError(f"listing {url} is not on one of its hosts")
        return self


class TrsPortal(_PortalSpec):
    cms: Literal["trs"]
    params: TrsParams = TrsParams()


class HanwebPortal(_PortalSpec):
    cms: Literal["hanweb"]
    params: HanwebParams = HanwebParams()


class GenericPortal(_PortalSpec):
    cms: Literal["generic"]
    params: GenericParams = GenericParams()


class UcapPortal(_PortalSpec):
    cms: Literal["ucap"]
    params: UcapParams = UcapParams()


class GkmlptPortal(_PortalSpec):
    cms: Literal["gkmlpt"]
    params: GkmlptParams = GkmlptParams()


FAMILIES = ("trs", "hanweb", "ucap", "gkmlpt", "generic")
AnyPortal = Annotated[TrsPortal | HanwebPortal | UcapPortal | GkmlptPortal | GenericPortal, Field(discriminator="cms")]


class RegistryFile(DataModel):
    portal: list[AnyPortal] = []


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
