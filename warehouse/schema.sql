-- The warehouse schema, version 1: one text for DuckDB and PostgreSQL (the common subset of both).
-- Times are UTC, stored as TIMESTAMP without zone. Ids come from sequences, which both engines share.
-- A later change goes in a new numbered file listed in warehouse/migrate.py; views for analysis may
-- live in warehouse/views.sql, which is (re)applied after the migrations on every open.

CREATE TABLE IF NOT EXISTS schema_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS agency_id_seq;
CREATE SEQUENCE IF NOT EXISTS report_id_seq;
CREATE SEQUENCE IF NOT EXISTS run_id_seq;

-- An agency is known by its 6-digit division code plus name when the registry supplies them, or only by
-- the name a hand-collected document prints. name_key is the normalized name used to match the latter.
CREATE TABLE IF NOT EXISTS agencies (
    agency_id     BIGINT PRIMARY KEY DEFAULT nextval('agency_id_seq'),
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL,
    division_code TEXT,
    level         TEXT,
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS agencies_name_key_idx ON agencies (name_key);
CREATE INDEX IF NOT EXISTS agencies_division_code_idx ON agencies (division_code);

-- One row per distinct file (the bytes live in the archive under sha256). agency_id and year are what the
-- supplier of the file knew (the crawler's registry, or --agency/--year), NULL if nothing; what the document
-- itself says is in reports.
CREATE TABLE IF NOT EXISTS documents (
    sha256        TEXT PRIMARY KEY,
    size          BIGINT NOT NULL,
    media_type    TEXT NOT NULL,
    original_name TEXT,
    url           TEXT,
    agency_id     BIGINT,
    year          INTEGER,
    first_seen    TIMESTAMP NOT NULL,
    last_seen     TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_agency_year_idx ON documents (agency_id, year);

CREATE TABLE IF NOT EXISTS runs (
    run_id          BIGINT PRIMARY KEY DEFAULT nextval('run_id_seq'),
    kind            TEXT NOT NULL,
    params          TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP,
    duration_s      DOUBLE PRECISION,
    n_new           INTEGER NOT NULL DEFAULT 0,
    n_unchanged     INTEGER NOT NULL DEFAULT 0,
    n_changed       INTEGER NOT NULL DEFAULT 0,
    n_not_a_report  INTEGER NOT NULL DEFAULT 0,
    n_unreadable    INTEGER NOT NULL DEFAULT 0,
    n_failed        INTEGER NOT NULL DEFAULT 0,
    checks_failing  INTEGER NOT NULL DEFAULT 0
);

-- One row per extraction record. report_key groups the versions of one report: 'agency_id:year' when
-- the document is a report of a known agency and year, else 'doc:<sha256>' (a letter posted in the
-- annual-report column must not supersede the agency's report). version counts distinct documents
-- under a key (a republished, corrected report is version 2); revision counts re-extractions of one
-- document whose result changed (gongkai reprocess). The current report of a key is its highest
-- version's latest revision (until schema version 3: see 003_current_rules.sql for today's rules).
CREATE TABLE IF NOT EXISTS reports (
    report_id         BIGINT PRIMARY KEY DEFAULT nextval('report_id_seq'),
    report_key        TEXT NOT NULL,
    version           INTEGER NOT NULL,
    revision          INTEGER NOT NULL,
    sha256            TEXT NOT NULL,
    agency_id         BIGINT,
    year              INTEGER,
    template          TEXT,
    status            TEXT NOT NULL,  -- extracted | no_standard_tables | not_a_report | unreadable
    reason            TEXT,           -- why unreadable / not a report
    title             TEXT,
    warnings          TEXT NOT NULL,  -- JSON array of strings
    n_cells           INTEGER NOT NULL,
    checks_failing    INTEGER NOT NULL,
    checks_incomplete INTEGER NOT NULL,
    extractor_version TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,  -- digest of the stored result: tells a changed re-extraction
    run_id            BIGINT,
    loaded_at         TIMESTAMP NOT NULL,
    UNIQUE (report_key, version, revision)
);
CREATE INDEX IF NOT EXISTS reports_agency_year_idx ON reports (agency_id, year);
CREATE INDEX IF NOT EXISTS reports_sha256_idx ON reports (sha256);
CREATE INDEX IF NOT EXISTS reports_year_idx ON reports (year);

CREATE TABLE IF NOT EXISTS cells (
    report_id BIGINT NOT NULL,
    address   TEXT NOT NULL,
    value     DOUBLE PRECISION,
    raw       TEXT,
    page      INTEGER,
    table_no  INTEGER,
    row_no    INTEGER,
    col_no    INTEGER,
    bbox_x0   DOUBLE PRECISION,
    bbox_y0   DOUBLE PRECISION,
    bbox_x1   DOUBLE PRECISION,
    bbox_y1   DOUBLE PRECISION,
    PRIMARY KEY (report_id, address)
);
CREATE INDEX IF NOT EXISTS cells_address_idx ON cells (address);

CREATE TABLE IF NOT EXISTS checks (
    report_id BIGINT NOT NULL,
    rule      TEXT NOT NULL,
    target    TEXT NOT NULL,
    expected  DOUBLE PRECISION,
    actual    DOUBLE PRECISION,
    status    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checks_report_idx ON checks (report_id);

-- Every time a document was run through an extractor version, and which report row holds the result: its
-- own, or, for a file carrying exactly the cells of its agency-year's current report (the same report as
-- HTML page and PDF attachment), that report's row; such a file is not a new version.
-- (sha256, extractor_version) present means: never extract this document with this version again.
CREATE TABLE IF NOT EXISTS extractions (
    sha256            TEXT NOT NULL,
    extractor_version TEXT NOT NULL,
    report_id         BIGINT NOT NULL,
    outcome           TEXT NOT NULL,  -- new | changed | unchanged
    run_id            BIGINT,
    extracted_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (sha256, extractor_version)
);

-- The latest extraction of each document, then the highest version of each report key (ties between
-- revisions of one version are broken by 002_current_reports_rank.sql, applied after this file).
CREATE OR REPLACE VIEW current_reports AS
SELECT report_id, report_key, version, revision, sha256, agency_id, year, template, status, reason, title,
       warnings, n_cells, checks_failing, checks_incomplete, extractor_version, fingerprint, run_id, loaded_at
FROM (
    SELECT latest.*, row_number() OVER (PARTITION BY report_key ORDER BY version DESC) AS key_rank
    FROM (
        SELECT r.*, row_number() OVER (PARTITION BY sha256 ORDER BY report_id DESC) AS doc_rank
        FROM reports r
    ) AS latest
    WHERE doc_rank = 1
) AS ranked
WHERE key_rank = 1;

CREATE OR REPLACE VIEW current_cells AS
SELECT r.agency_id, r.year, r.template, c.*
FROM current_reports r JOIN cells c ON c.report_id = r.report_id;
