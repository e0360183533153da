"""A minimal Lambda Runtime API on loopback, for running a function's real binary as Lambda does.

Only what the Rust runtime uses: `GET /2018-06-01/runtime/invocation/next` (held open until an
event is queued, as Lambda holds it between invocations), and the posts back (`response`,
`error`, `init/error`). It timestamps each request, so the harness can measure a cold start (exec
to the first `next`) and a warm invocation (the event handed over to its response posted).
It is a measuring device, not a Lambda emulator.
"""

import itertools
import json
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietServer(ThreadingHTTPServer):
    """A peer that goes away (a function process killed at the end of a run) is not an error."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:reflex-bench"


class RuntimeApi:
    """One server; any number of function processes may poll it (a shared queue of events)."""

    def __init__(self):
        self.events = queue.Queue()
        self.posted = queue.Queue()  # (request_id, kind, body, monotonic time)
        self.first_next = threading.Event()
        self.first_next_at = None
        self.polls = 0  # `next` requests so far (every poller's first one: it is ready)
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self.handed_at = {}  # request id -> monotonic time the event was handed over
        api = self

        class Handler(BaseHTTPRequestHandler):
            # TCP_NODELAY: http.server writes a response's headers and body in two sends, and
            # Nagle's algorithm holds the second until the first is acknowledged, which the
            # client delays up to 40 ms: stalls that are the harness's, not the function's.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    self.send_error(404)
                    return
                with api._lock:
                    api.polls += 1
                    if api.first_next_at is None:
                        api.first_next_at = time.monotonic()
                        api.first_next.set()
                item = api.events.get()
                if item is None:  # shutting down: leave the poller hanging up
                    self.close_connection = True
                    return
                request_id, event = item
                # Bytes go out as they are (a hostile event need not be JSON).
                body = event if isinstance(event, bytes) else json.dumps(event).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("lambda-runtime-aws-request-id", request_id)
                self.send_header(
                    "lambda-runtime-deadline-ms", str(int(time.time() * 1000) + 60_000)
                )
                self.send_header("lambda-runtime-invoked-function-arn", FUNCTION_ARN)
                self.send_header(
                    "lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000"
                )
                self.send_header("content-length", str(len(body)))
                # Timed before the bytes go out: the answer cannot come back before this.
                with api._lock:
                    api.handed_at[request_id] = time.monotonic()
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                now = time.monotonic()
                parts = self.path.removeprefix("/2018-06-01/runtime/").split("/")
                if len(parts) == 3 and parts[0] == "invocation":
                    request_id, kind = parts[1], parts[2]
                elif parts == ["init", "error"]:
                    request_id, kind = "", "init-error"
                else:
                    request_id, kind = "", "unknown " + self.path
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                self.send_response(202)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                api.posted.put((request_id, kind, body, now))

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def queue_event(self, event):
        """Queue one event; its request id."""
        request_id = "bench-%d" % next(self._ids)
        self.events.put((request_id, event))
        return request_id

    def invoke(self, event, timeout=60):
        """Hand one event to a waiting function; (seconds from hand-over to its answer, kind, body)."""
        request_id = self.queue_event(event)
        got_id, kind, body, at = self.posted.get(timeout=timeout)
        if got_id != request_id:
            raise RuntimeError("answer for %r while waiting for %r" % (got_id, request_id))
        with self._lock:
            handed = self.handed_at.pop(request_id)
        self.last_invocation = (handed, at)
        return at - handed, kind, body

    def close(self, pollers=0):
        for _ in range(pollers):
            self.events.put(None)
        self.server.shutdown()
        self.server.server_close()


def lambda_env(api, function):
    """The variables Lambda sets that the Rust runtime and Reflex read."""
    return {
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "reflex-" + function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/reflex-" + function,
        "REFLEX_POLICY_PARAMETER": "/reflex/policy",
        "RUST_LOG": "info",
    }
