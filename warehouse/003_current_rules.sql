-- Schema version 3: which version of a report is current, and one agency under several names.
--
-- reports.claimed_by: the agency the supplier of the file named (the crawler's registry portal, or
--   `ingest --agency`), NULL when the agency was read from the document itself. One file may be the
--   report of several agencies (the same PDF linked from two portals): each claim stays current.
-- reports.found_at: when the version was first found (the start of the run that loaded it; a revision
--   keeps its version's). Every version found in one run has the same found_at, so the order in which
--   extractions finish never decides which one is current.
-- reports.published: the publication date the extraction result gives, if any.
ALTER TABLE reports ADD COLUMN claimed_by BIGINT;
ALTER TABLE reports ADD COLUMN found_at TIMESTAMP;
ALTER TABLE reports ADD COLUMN published DATE;

UPDATE reports SET found_at = coalesce(
    (SELECT min(run.started_at) FROM reports first JOIN runs run ON run.run_id = first.run_id
     WHERE first.report_key = reports.report_key AND first.version = reports.version),
    (SELECT min(first.loaded_at) FROM reports first
     WHERE first.report_key = reports.report_key AND first.version = reports.version)
);
-- Before version 3 a report row's agency was the caller's whenever the caller gave one (documents.agency_id).
UPDATE reports SET claimed_by = agency_id
WHERE EXISTS (SELECT 1 FROM documents d WHERE d.sha256 = reports.sha256 AND d.agency_id = reports.agency_id);

-- Every name an agency has been seen under (registry, --agency, the document itself). identity_key is the
-- name without what does not tell two agencies apart (a province prefix, 人民政府 / 管委会 …;
-- warehouse/agency_names.toml); city_key also drops a city prefix, used only when it names one agency.
CREATE TABLE IF NOT EXISTS agency_aliases (
    name_key     TEXT NOT NULL,
    agency_id    BIGINT NOT NULL,
    name         TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    city_key     TEXT,
    first_seen   TIMESTAMP NOT NULL,
    PRIMARY KEY (name_key, agency_id)
);
CREATE INDEX IF NOT EXISTS agency_aliases_identity_idx ON agency_aliases (identity_key);
CREATE INDEX IF NOT EXISTS agency_aliases_city_idx ON agency_aliases (city_key);

-- Loads that failed (an extractor crash, a value the database refused), with their reason, for `gongkai status`.
-- A later successful extraction of the same document clears them from the view (failures_open).
CREATE TABLE IF NOT EXISTS load_failures (
    sha256    TEXT NOT NULL,
    name      TEXT,
    reason    TEXT NOT NULL,
    run_id    BIGINT,
    failed_at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS load_failures_sha256_idx ON load_failures (sha256);

-- The current report of a key (an agency and year):
-- 1. each document's live rows: its latest row per claimant; a row whose agency the document itself named
--    only while it is the document's latest row (a caller's later --agency/--year moves it);
-- 2. among them: a version with cells before one without (a changed detail page or a notice never
--    replaces the report), then the later publication date, then the later run that found it, then the
--    content (fewer failing checks, more cells), then the later revision, then the sha256: never load order.
-- Same columns as versions 1 and 2, so the views built on it stay valid on PostgreSQL.
CREATE OR REPLACE VIEW current_reports AS
SELECT report_id, report_key, version, revision, sha256, agency_id, year, template, status, reason, title,
       warnings, n_cells, checks_failing, checks_incomplete, extractor_version, fingerprint, run_id, loaded_at
FROM (
    SELECT live.*, row_number() OVER (
        PARTITION BY report_key
        ORDER BY CASE WHEN n_cells > 0 THEN 0 ELSE 1 END, published DESC NULLS LAST, found_at DESC NULLS LAST,
                 checks_failing, n_cells DESC, revision DESC, sha256 DESC, report_id DESC
    ) AS key_rank
    FROM (
        SELECT r.*,
               row_number() OVER (PARTITION BY r.sha256, r.claimed_by ORDER BY r.report_id DESC) AS claim_rank,
               row_number() OVER (PARTITION BY r.sha256 ORDER BY r.report_id DESC) AS doc_rank
        FROM reports r
    ) AS live
    WHERE claim_rank = 1 AND (claimed_by IS NOT NULL OR doc_rank = 1)
) AS ranked
WHERE key_rank = 1;
