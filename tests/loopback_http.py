"""A loopback HTTP server that answers like the hosts of the weight files do: plain files with
``Range`` support, misbehaving answers (truncated, endless, drip-fed), and Google Drive's two HTML
pages (the virus-scan confirmation page, then the file; the quota-exceeded page).

Shared by ``tests/test_fetch.py`` and the paper-tier rehearsal (``scripts/rehearse.py``); it listens
on 127.0.0.1 only. Bodies are ``bytes`` or a ``Path`` streamed from disk (the rehearsal's files are
hundreds of MB).
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Union

__all__ = ["LoopbackServer", "DRIVE_CONFIRM_PAGE", "DRIVE_QUOTA_PAGE"]

Body = Union[bytes, Path]
_CHUNK = 1 << 20

#: Drive's answer to ``/uc?id=ID&export=download`` for a file too large to be virus-scanned: a
#: form whose hidden inputs (``confirm=t``) lead to the file (the page as of 2024; ``{action}``,
#: ``{id}``, ``{uuid}`` filled in).
DRIVE_CONFIRM_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>
<meta http-equiv="content-type" content="text/html; charset=utf-8"/></head><body>
<div class="uc-main"><div id="uc-text"><p class="uc-warning-caption">Google Drive can't scan this file for viruses.</p>
<p class="uc-warning-subcaption"><span class="uc-name-size"><a href="/open?id={id}">{name}</a> (310M)</span>
is too large for Google to scan for viruses. Would you still like to download this file?</p>
<form id="download-form" action="{action}" method="get">
<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button jfk-button-action" value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}">
</form></div></div></body></html>"""

#: Drive's answer when a file was downloaded too often (HTTP 200, an HTML page, no form).
DRIVE_QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title>
<meta http-equiv="content-type" content="text/html; charset=utf-8"/></head><body>
<div class="uc-main"><div id="uc-text"><p class="uc-error-caption">Sorry, you can't view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please try accessing
the file again later. If the file you are trying to access is particularly large or is shared with many people,
it may take up to 24 hours to be able to view or download the file.</p></div></div></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # bounded: an idle connection never blocks the server for long

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        srv: LoopbackServer = self.server.owner  # type: ignore[attr-defined]
        state = srv.state
        rng = self.headers.get("Range")
        with state["lock"]:
            state["requests"].append({"path": self.path, "range": rng})
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        if parts.path in ("/uc", "/download") and query.get("id") in state["drive"]:
            self._drive(parts.path, query, state["drive"][query["id"]])
            return
        if self.path in state["hostile"]:
            self._hostile(state["hostile"][self.path])
            return
        if self.path not in state["files"]:
            self.send_error(404)
            return
        time.sleep(state["delay"])
        body, ctype = state["files"][self.path]
        with state["lock"]:
            truncate = state["truncate"].get(self.path, 0) > 0
            if truncate:
                state["truncate"][self.path] -= 1
        self._send_file(body, ctype, None if self.path in state["ignore_range"] else rng, truncate)

    # ------------------------------------------------------------------ answers

    def _send_file(self, body: Body, ctype: str, rng: str | None, truncate: bool = False,
                   headers: dict[str, str] | None = None) -> None:
        """``body`` from its start, or from a ``Range: bytes=N-`` offset (206); ``truncate``: send
        half of it, then drop the connection."""
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        start, status = 0, 200
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            if not m:
                self.send_error(400)
                return
            start = int(m.group(1))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size - start))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        end = start + (size - start) // 2 if truncate else size
        try:
            if isinstance(body, Path):
                with open(body, "rb") as f:
                    f.seek(start)
                    while start < end and (chunk := f.read(min(_CHUNK, end - start))):
                        self.wfile.write(chunk)
                        start += len(chunk)
            else:
                self.wfile.write(body[start:end])
            self.wfile.flush()
        except OSError:  # the client hung up
            return
        if truncate:
            self.close_connection = True

    def _html(self, page: str) -> None:
        data = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drive(self, path: str, query: dict[str, str], entry: dict) -> None:
        """Google Drive: ``/uc?id=ID`` answers the confirmation page (or the quota page);
        ``/download?id=ID&confirm=t&uuid=...`` with the uuid of a page it sent answers the file."""
        srv: LoopbackServer = self.server.owner  # type: ignore[attr-defined]
        if entry["quota"]:
            self._html(DRIVE_QUOTA_PAGE)
            return
        if path == "/download" and query.get("confirm") == "t" and query.get("uuid") in entry["uuids"]:
            name = entry["name"]
            self._send_file(entry["body"], "application/octet-stream", self.headers.get("Range"),
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
            return
        token = uuid.uuid4().hex
        with srv.state["lock"]:
            entry["uuids"].add(token)
        self._html(DRIVE_CONFIRM_PAGE.format(action=srv.url("/download"), id=query["id"], name=entry["name"],
                                             uuid=token))

    def _hostile(self, spec: tuple[str, bytes]) -> None:
        """Misbehave as ``spec = (mode, body)`` says, until the client gives up."""
        mode, body = spec
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if mode == "short-length":  # announces half, sends everything
            self.send_header("Content-Length", str(len(body) // 2))
        elif mode in ("drip", "slow"):
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            if mode == "no-length-cut":  # no Content-Length, half the file, then close
                self.wfile.write(body[: len(body) // 2])
            elif mode == "short-length":
                self.wfile.write(body)
            elif mode == "endless":  # no Content-Length, never ends
                while True:
                    self.wfile.write(body)
            elif mode in ("drip", "slow"):  # 1 byte (drip) or 2 KB (slow) every 20 ms
                step = 1 if mode == "drip" else 2048
                for k in range(0, len(body), step):
                    self.wfile.write(body[k:k + step])
                    self.wfile.flush()
                    time.sleep(0.02)
        except OSError:  # the client hung up: what the tests look at
            pass


class LoopbackServer:
    """``with LoopbackServer() as srv: url = srv.serve("/f.pkl", data)``: a threaded HTTP server on
    127.0.0.1 (a free port) in a daemon thread, stopped on leaving the block.

    ``state`` holds what the tests inspect and steer: ``requests`` (path and Range of each),
    ``truncate`` (path -> answers to cut in half), ``ignore_range`` (paths answered from 0),
    ``delay`` (seconds before each plain answer)."""

    def __init__(self) -> None:
        self.state: dict = {"files": {}, "requests": [], "truncate": {}, "ignore_range": set(), "hostile": {},
                            "drive": {}, "delay": 0.0, "lock": threading.Lock()}
        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._srv.daemon_threads = True
        self._srv.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._srv.server_address[1]}{path}"

    def serve(self, path: str, body: Body, ctype: str = "application/octet-stream") -> str:
        """Answer ``GET path`` with ``body``; returns its URL."""
        self.state["files"][path] = (body, ctype)
        return self.url(path)

    def misbehave(self, path: str, mode: str, body: bytes) -> str:
        """Answer ``GET path`` badly: ``no-length-cut``, ``short-length``, ``endless``, ``drip``, ``slow``."""
        self.state["hostile"][path] = (mode, body)
        return self.url(path)

    def drive(self, file_id: str, body: Body, name: str, quota: bool = False) -> str:
        """Serve ``body`` as Google Drive serves a large file ``file_id``: the confirmation page, then
        (its form followed) the file; ``quota=True``: the quota-exceeded page instead. Returns the
        ``/uc?id=ID&export=download`` URL (the form of the official link)."""
        self.state["drive"][file_id] = {"body": body, "name": name, "quota": quota, "uuids": set()}
        return self.url(f"/uc?id={file_id}&export=download")

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "LoopbackServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
