"""Bumped whenever extraction output may change, so archived documents are re-extracted (`gongkai reprocess`)."""

EXTRACTOR_VERSION = "0.2.0"  # 0.2: statuses partial and unreadable_tables, the blank-subtotal clause, .odt/.rtf
