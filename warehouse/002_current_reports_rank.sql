-- Schema version 2: current_reports breaks ties between rows of one version. Two files of one report
-- (an HTML page and its PDF) can each hold a revision of the same version; ranking by version alone
-- picked either. The latest revision wins, then the latest row. Same columns as version 1, so views
-- built on it (current_cells, views.sql) stay valid on PostgreSQL.
CREATE OR REPLACE VIEW current_reports AS
SELECT report_id, report_key, version, revision, sha256, agency_id, year, template, status, reason, title,
       warnings, n_cells, checks_failing, checks_incomplete, extractor_version, fingerprint, run_id, loaded_at
FROM (
    SELECT latest.*, row_number() OVER (PARTITION BY report_key ORDER BY version DESC, revision DESC, report_id DESC) AS key_rank
    FROM (
        SELECT r.*, row_number() OVER (PARTITION BY sha256 ORDER BY report_id DESC) AS doc_rank
        FROM reports r
    ) AS latest
    WHERE doc_rank = 1
) AS ranked
WHERE key_rank = 1;
