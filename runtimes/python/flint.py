"""What Flint's Python runtime offers functions (import flint).

publish(topic, body, headers=None, msg_id=None) publishes a message to one
of the topics the function's spec lists under `publishes`, through the
socket flintd serves inside the instance's sandbox (FLINT_PUBLISH,
docs/runtime-contract.md "Publishing to topics"). It returns the answer's
JSON ({"topic", "seq", "duplicate"}) once the message is durable, and
raises PublishError (with .status, .code and the JSON .error) otherwise:
403 topic_not_allowed for a topic the spec does not list, 404 for a topic
that does not exist, 413 for a body over flintd's bound.
"""
import http.client
import json
import os
import socket
import urllib.parse

__all__ = ["publish", "PublishError"]


class PublishError(Exception):
    def __init__(self, status, error):
        self.status = status
        self.error = error if isinstance(error, dict) else {}
        self.code = self.error.get("code", "")
        super().__init__(f"publish failed: {status} {self.code}: {self.error.get('message', '')}")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("flint", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def _socket_path():
    where = os.environ.get("FLINT_PUBLISH", "")
    if not where.startswith("unix:"):
        raise PublishError(0, {"code": "no_publish_socket",
                               "message": "FLINT_PUBLISH is not set: this instance cannot publish"})
    return where[len("unix:"):]


def publish(topic, body, headers=None, msg_id=None, timeout=30):
    """Publish body (bytes, or str as UTF-8) to topic; see the module's doc."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    sent = dict(headers or {})
    if msg_id is not None:
        sent["X-Flint-Message-Id"] = str(msg_id)
    conn = _UnixConnection(_socket_path(), timeout)
    try:
        conn.request("POST", f"/topics/{urllib.parse.quote(str(topic), safe='')}/messages", body=body, headers=sent)
        r = conn.getresponse()
        data = r.read()
    finally:
        conn.close()
    try:
        answer = json.loads(data or b"null")
    except ValueError:
        answer = None
    if r.status != 202:
        raise PublishError(r.status, (answer or {}).get("error") if isinstance(answer, dict) else None)
    return answer
