#!/usr/bin/env python3
"""Flint's Python runtime: one instance serving one function.

It implements the runtime contract (docs/runtime-contract.md) with the
standard library only:

  FLINT_LISTEN=fd:N (or unix:/path, tcp:HOST:PORT)   where to serve HTTP/1.1
  GET  /healthz                                200 once ready
  POST /v2/specialize {"filepath", "functionName"}
                                               load the function, once
  anything else                                an invocation

A function is `def main(request)` (or takes no argument) in a module; the
functionName is "module.func" ("main" in the file given, by default). It
returns a body (str or bytes), a (body, status) or (body, status, headers)
tuple, or a dict or list (sent as JSON). An optional `def init()` in the
module runs once at specialization. A status outside 200-599, a header name
that is not a token, a value with a control character, or a Content-Length
or Transfer-Encoding header (the runtime frames the body) is a 500 naming
what is wrong: never a response the caller's side cannot parse.
"""
import importlib.util
import inspect
import json
import os
import re
import socket
import socketserver
import sys
import threading
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler

MAX_BODY = int(os.environ.get("FLINT_MAX_BODY", str(64 << 20)))


class Request:
    """What a function receives."""

    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query            # dict: name -> first value
        self.headers = headers        # case-insensitive mapping
        self.body = body              # bytes
        # route parameters, from X-Flint-Param-<name>; header names carry no
        # case, so the names are lower-cased
        self.params = {k[len("x-flint-param-"):].lower(): v for k, v in headers.items()
                       if k.lower().startswith("x-flint-param-")}

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body or b"null")


class Function:
    def __init__(self):
        self.lock = threading.Lock()
        self.call = None
        self.name = None
        self.takes_request = True


FUNCTION = Function()


def load(filepath, function_name):
    """Import the module and find the function; raise ValueError with a clear message."""
    if not filepath or not os.path.exists(filepath):
        raise ValueError(f"filepath '{filepath}' does not exist")
    module_name, _, func_name = (function_name or "").rpartition(".")
    func_name = func_name or "main"
    if os.path.isdir(filepath):
        if not module_name:
            raise ValueError(f"functionName '{function_name}' must be module.func for a directory")
        path = os.path.join(filepath, module_name.replace(".", "/") + ".py")
        if not os.path.exists(path):
            raise ValueError(f"module '{module_name}' not found in '{filepath}'")
        sys.path.insert(0, filepath)
    else:
        path = filepath
        module_name = module_name or os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None:
        raise ValueError(f"'{path}' is not a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise ValueError(f"syntax error in {os.path.basename(e.filename or path)} line {e.lineno}: {e.msg}")
    except Exception as e:
        raise ValueError(f"importing '{module_name}' failed: {type(e).__name__}: {e}")
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ValueError(f"module '{module_name}' has no function '{func_name}'")
    init = getattr(module, "init", None)
    if callable(init) and init is not func:
        try:
            init()
        except Exception as e:
            raise ValueError(f"init() of '{module_name}' failed: {type(e).__name__}: {e}")
    try:
        takes_request = len(inspect.signature(func).parameters) > 0
    except (TypeError, ValueError):
        takes_request = True
    return func, takes_request, f"{module_name}.{func_name}"


TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class InvalidResponse(Exception):
    """What a function returned cannot be sent as HTTP."""


def checked_headers(headers):
    out = {}
    for name, value in headers.items():
        name, value = str(name), str(value)
        if not TOKEN.fullmatch(name):
            raise InvalidResponse(f"header name {name!r} is not a token")
        if CONTROL.search(value):
            raise InvalidResponse(f"header {name!r} holds a control character")
        if name.lower() in ("content-length", "transfer-encoding"):
            raise InvalidResponse(f"header {name!r} is the runtime's to set")
        out[name] = value
    return out


def to_response(result):
    """(status, headers, body bytes) from what a function returned."""
    status, headers = 200, {}
    if isinstance(result, tuple):
        if not 2 <= len(result) <= 3:
            raise InvalidResponse("a returned tuple is (body, status) or (body, status, headers)")
        body = result[0]
        try:
            status = int(result[1])
        except (TypeError, ValueError):
            raise InvalidResponse(f"status {result[1]!r} is not a number") from None
        if not 200 <= status <= 599:
            raise InvalidResponse(f"status {status} is not from 200 to 599")
        if len(result) == 3:
            try:
                headers = checked_headers(dict(result[2] or {}))
            except (TypeError, ValueError):
                raise InvalidResponse("headers must be a mapping of names to values") from None
    else:
        body = result
    if body is None:
        body = b""
    if isinstance(body, (dict, list)):
        headers.setdefault("Content-Type", "application/json")
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        body = body.encode()
    elif isinstance(body, (bytes, bytearray)):
        headers.setdefault("Content-Type", "application/octet-stream")
        body = bytes(body)
    else:
        raise InvalidResponse(f"cannot send a {type(body).__name__} as a body")
    return status, headers, body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "flint-python"

    def log_message(self, fmt, *args):  # access logs are the executor's business
        pass

    def send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message):
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.send(status, {"Content-Type": "application/json"}, body)

    def read_body(self):
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(length or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            return self.error(413, "body_too_large", f"the body is larger than {MAX_BODY} bytes")
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/healthz" and self.command == "GET":
            return self.send(200, {"Content-Type": "application/json"}, b'{"status":"ok"}')
        if url.path == "/v2/specialize" and self.command == "POST":
            return self.specialize(body)
        if FUNCTION.call is None:
            return self.error(503, "not_specialized", "this instance has no function loaded yet")
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        req = Request(self.command, url.path, query, self.headers, body)
        try:
            result = FUNCTION.call(req) if FUNCTION.takes_request else FUNCTION.call()
            status, headers, out = to_response(result)
        except InvalidResponse as e:
            print(f"{FUNCTION.name} returned an invalid response: {e}", file=sys.stderr, flush=True)
            return self.error(500, "function_error",
                              f"{FUNCTION.name} returned an invalid response: {e}")
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            return self.error(500, "function_error", f"{FUNCTION.name} raised {type(e).__name__}: {e}")
        self.send(status, headers, out)

    def specialize(self, body):
        try:
            req = json.loads(body or b"{}")
            if not isinstance(req, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as e:
            return self.error(400, "bad_request", f"specialize: {e}")
        with FUNCTION.lock:
            if FUNCTION.call is not None:
                return self.error(409, "already_specialized",
                                  f"this instance already runs {FUNCTION.name}")
            try:
                func, takes_request, name = load(req.get("filepath"), req.get("functionName"))
            except ValueError as e:
                return self.error(400, "specialize_failed", str(e))
            FUNCTION.call, FUNCTION.takes_request, FUNCTION.name = func, takes_request, name
        print(f"specialized {name}", flush=True)
        return self.send(200, {"Content-Type": "application/json"},
                         json.dumps({"function": name}).encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 1024  # the executor may open many connections at once

    def get_request(self):
        conn, _ = super().get_request()
        return conn, ("unix", 0)


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


def main():
    listen = os.environ.get("FLINT_LISTEN", "")
    if listen.startswith("fd:"):
        # a listening socket flintd bound and handed over
        sock = socket.socket(fileno=int(listen[3:]))
        sock.set_inheritable(False)
        cls = UnixServer if sock.family == socket.AF_UNIX else TCPServer
        server = cls(None, Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
    elif listen.startswith("unix:"):
        path = listen[5:]
        if os.path.exists(path):
            os.unlink(path)
        server = UnixServer(path, Handler)
    elif listen.startswith("tcp:"):
        host, _, port = listen[4:].rpartition(":")
        server = TCPServer((host, int(port)), Handler)
    else:
        print("flint python runtime: FLINT_LISTEN must be fd:N, unix:PATH or tcp:HOST:PORT", file=sys.stderr)
        return 2
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
