-- Schema version 4: the crawler's per-URL memory, shared by every worker that writes this warehouse.
--
-- Before, each machine kept it in a JSON file under its data folder (crawler/state.py imports such a file once).
-- A row is written only after its page was handled completely: its HTTP validators (sent back as If-None-Match /
-- If-Modified-Since) and what was read from it (`derived`, JSON: a listing page's candidates, a detail page's
-- attachments), reused when the server answers 304. `host` (host[:port], as the crawler's politeness keys it)
-- lets a crawl of some hosts (a shard) read its rows in one query. Workers upsert row by row, never rewrite the
-- table, so two shards saving at once lose nothing.
CREATE TABLE IF NOT EXISTS crawl_state (
    url           TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    etag          TEXT,
    last_modified TEXT,
    derived       TEXT,
    updated_at    TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS crawl_state_host_idx ON crawl_state (host);
