"""AWS calls as the emulator sees them: a recording proxy in front of it, the rounds a run's
calls form, and a bare client replaying the same requests back to back (the API floor).

The proxy is used for one run per scenario only, to learn which calls a fix makes and in what
rounds; timed runs go straight to the emulator.
"""

import http.client
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietServer(ThreadingHTTPServer):
    """A peer that goes away (a function process killed at the end of a run) is not an error."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)
from urllib.parse import urlsplit

HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "expect"}


class Call:
    def __init__(self, method, path, headers, body, start, end, status):
        self.method, self.path, self.headers, self.body = method, path, headers, body
        self.start, self.end, self.status = start, end, status

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def name(self):
        """`service Operation` (or the S3 REST request), for the rounds' listing."""
        auth = self.header("authorization") or ""
        m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
        service = m.group(1) if m else "?"
        target = self.header("x-amz-target")
        if target:
            return "%s %s" % (service, target.split(".")[-1])
        m = re.search(rb"(?:^|&)Action=([A-Za-z]+)", self.body or b"")
        if m:
            return "%s %s" % (service, m.group(1).decode())
        path, _, query = self.path.partition("?")
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        if "x-id" in params:
            return "%s %s" % (service, params["x-id"])
        sub = next(iter(params), "")
        verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}.get(self.method, self.method)
        known = {"publicAccessBlock": "PublicAccessBlock", "tagging": "BucketTagging", "policy": "BucketPolicy",
                 "encryption": "BucketEncryption", "acl": "BucketAcl", "location": "BucketLocation"}
        if sub in known:
            return "%s %s%s" % (service, verb, known[sub])
        return "%s %s %s%s" % (service, self.method, path.split("/")[1] if "/" in path else path, "?" + sub if sub else "")


class RecordingProxy:
    """Forwards every request to `upstream` and records it with its start and end times."""

    def __init__(self, upstream):
        target = urlsplit(upstream)
        self.calls = []
        self.recording = False
        lock = threading.Lock()
        local = threading.local()
        proxy = self

        def connection():
            if getattr(local, "conn", None) is None:
                local.conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            return local.conn

        class Handler(BaseHTTPRequestHandler):
            # TCP_NODELAY: http.server writes a response's headers and body in two sends, and
            # Nagle's algorithm holds the second until the first is acknowledged, which the
            # client delays up to 40 ms: stalls that are the harness's, not the function's.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def body(self):
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length", "0")))

            def forward(self):
                body = self.body()
                headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP]
                start = time.monotonic()
                conn = connection()
                try:
                    conn.request(self.command, self.path, body=body, headers=dict(headers))
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException):
                    local.conn = None
                    raise
                end = time.monotonic()
                if proxy.recording:
                    with lock:
                        proxy.calls.append(
                            Call(self.command, self.path, headers, body, start, end, resp.status)
                        )
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            # PATCH too: Security Hub's BatchUpdateFindings is a PATCH.
            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = forward

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def rounds(calls):
    """Calls grouped into sequential rounds: a round ends when every call in it has answered
    before the next call starts (calls in flight together are one round)."""
    out, current, end = [], [], None
    for c in sorted(calls, key=lambda c: c.start):
        if current and c.start >= end:
            out.append(current)
            current, end = [], None
        current.append(c)
        end = c.end if end is None else max(end, c.end)
    if current:
        out.append(current)
    return out


class BareClient:
    """The recorded requests sent again, back to back, on one keep-alive connection: no SDK, no
    serialization, no signing; what the emulator alone takes to answer the same calls."""

    def __init__(self, endpoint):
        target = urlsplit(endpoint)
        self.conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)

    def send(self, call, subst=()):
        path, body = call.path, call.body or b""
        headers = dict(call.headers)
        for old, new in subst:
            path = path.replace(old, new)
            body = body.replace(old.encode(), new.encode())
        self.conn.request(call.method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        resp.read()
        return resp.status

    def replay(self, calls, subst=()):
        """Seconds for all of them in sequence, and the statuses that differ from the recording."""
        start = time.monotonic()
        statuses = [self.send(c, subst) for c in calls]
        took = time.monotonic() - start
        differ = [
            "%s: %d (recorded %d)" % (c.name(), s, c.status)
            for c, s in zip(calls, statuses)
            if s != c.status
        ]
        return took, differ

    def close(self):
        self.conn.close()
