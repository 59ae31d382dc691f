"""`gongkai browse`: a small read-only web site over the warehouse (see gongkai/browse/app.py)."""
