"""Crawler: agency registry, polite fetcher, one adapter per CMS family, report discovery, demo portal."""
