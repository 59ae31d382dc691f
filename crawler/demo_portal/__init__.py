"""A local portal on 127.0.0.1 serving five CMS families (TRS, Hanweb, UCAP, gkmlpt, generic) from the real corpus, with faults injected.

    with DemoPortal() as demo:          # port 0: an ephemeral port
        portals = load_registry(demo_port=demo.port)
        ...
        demo.requests                   # every request: method, host, path, conditional headers, status
"""

from gongkai.crawler.demo_portal.server import DemoPortal, LoggedRequest
from gongkai.crawler.demo_portal.site import Resource, ServedDocument, Site, build_site

__all__ = ["DemoPortal", "LoggedRequest", "Resource", "ServedDocument", "Site", "build_site"]
