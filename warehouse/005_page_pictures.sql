-- Schema version 5: the pictures an HTML report page links (`<img src>`), fetched by the crawler with the page.
--
-- A report pasted into its page as pictures of its tables is read from the page and those pictures together; the
-- pictures sit in the archive (content-addressed) like any file, and this table says which page links which, so
-- `reprocess` reads the page with them again. `src` is the attribute as written in the page (how the HTML reader
-- finds the picture); `picture_sha256` NULL: fetched and skipped as an icon (too small to hold a table).
CREATE TABLE IF NOT EXISTS page_pictures (
    page_sha256    TEXT NOT NULL,
    src            TEXT NOT NULL,
    picture_sha256 TEXT,
    first_seen     TIMESTAMP NOT NULL,
    PRIMARY KEY (page_sha256, src)
);
