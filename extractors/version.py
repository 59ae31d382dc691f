"""Bumped whenever extraction output may change, so archived documents are re-extracted (`gongkai reprocess`)."""

EXTRACTOR_VERSION = "0.1.0"
