"""The registry file's models (crawler/registry.toml): each [[portal]] and its [portal.params] validated by pydantic,
read by crawler.registry.load_registry. A module of its own so that what only uses Portal (a crawler process, the
adapters) does not import pydantic."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from gongkai.crawler.registry import host_of
from gongkai.schema.datafile import DataModel

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
