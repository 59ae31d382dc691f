"""The fetch path on a urllib3 other than the one crawler.wire's getresponse follows (2.8.0).

crawler.wire uses its lean getresponse only where urllib3's own is the one it was copied from (GETRESPONSE_SHA256) and
urllib3's own everywhere else. That promise must hold for the imports too: a private helper only some urllib3 releases
have (`_normalize_header_values`, new with the unfolding of obsolete folded header values) must not stop the
crawler from importing on a urllib3 2.x without it, which requests' own bounds allow."""

from __future__ import annotations

from fresh_interpreter import fresh


def test_the_crawler_imports_and_fetches_on_a_urllib3_without_the_header_unfolding_helper() -> None:
    # as a urllib3 before the helper was added: the name absent while the crawler imports (restored afterwards, since
    # this urllib3's own getresponse, the one the crawler must then fall back to, calls it)
    seen = fresh("""
        import json, threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import urllib3.connection
        helper = urllib3.connection._normalize_header_values
        del urllib3.connection._normalize_header_values
        try:
            from gongkai.crawler import transport, wire
            from gongkai.crawler.fetcher import Fetcher
        finally:
            urllib3.connection._normalize_header_values = helper

        class Page(BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"User-agent: *\\nAllow: /\\n" if self.path == "/robots.txt" else b"<html>ok</html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host = f"127.0.0.1:{server.server_address[1]}"
        got = Fetcher({host}, delay=0.0, retries=0).fetch(f"http://{host}/a.html", allowed_hosts={host})
        server.shutdown()
        print(json.dumps({"lean": wire.lean_getresponse is not None,
                          "own": transport.PinnedHTTPConnection.getresponse is urllib3.connection.HTTPConnection.getresponse,
                          "status": got.status, "body": got.content.decode()}))
    """)
    assert seen == {"lean": False, "own": True, "status": 200, "body": "<html>ok</html>"}
