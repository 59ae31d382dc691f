"""Bumped whenever extraction output may change, so archived documents are re-extracted (`gongkai reprocess`)."""

EXTRACTOR_VERSION = "0.3.0"  # 0.3: the pre-2019 统计表 (table stats, template pre2019); 0.2: statuses partial and unreadable_tables, the blank-subtotal clause, .odt/.rtf
