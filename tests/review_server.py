"""GitLab's merge request notes API and GitHub's issue comments API, as their documentation
describes them, in memory on 127.0.0.1 (a `http.server` in a thread, on a free port).

GitLab, under /api/v4: `GET /projects/:id/merge_requests/:iid/notes?per_page&page` (newest
first, at most 100 a page, the next page in `X-Next-Page`, empty on the last), `POST` there,
`PUT .../notes/:note_id`; the token in `PRIVATE-TOKEN`, else 401.
GitHub, under /github: `GET /repos/:owner/:repo/issues/:n/comments?per_page&page` (oldest
first, the next page in `Link: <...>; rel="next"`), `POST` there, `PATCH
/repos/:owner/:repo/issues/comments/:id`; the token as `Authorization: Bearer`, else 401.

`fail` answers every request with that status; error bodies repeat the token they were sent,
as a careless server might, so tests can check that tfrun never shows it.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROJECT = "42"
MERGE_REQUEST = "7"
REPOSITORY = "acme/infra"
PULL_REQUEST = 9
GITLAB_PREFIX = "/api/v4"
GITHUB_PREFIX = "/github"
MAX_PER_PAGE = 100

_GITLAB_LIST = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/([^/]+)/notes$")
_GITLAB_ITEM = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/([^/]+)/notes/(\d+)$")
_GITHUB_LIST = re.compile(r"^/github/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$")
_GITHUB_ITEM = re.compile(r"^/github/repos/([^/]+)/([^/]+)/issues/comments/(\d+)$")


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class ReviewServer:
    token: str
    url: str = ""
    notes: dict[int, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    fail: int | None = None
    redirect_to: str | None = None
    reply_text: str | None = None  # answer every request 200 with this body
    next_link_base: str | None = None  # GitHub: where next pages point (default: here)
    _next_id: int = 1000

    def add(self, body: str, *, system: bool = False) -> int:
        self._next_id += 1
        self.notes[self._next_id] = {"id": self._next_id, "body": body, "system": system}
        return self._next_id

    def bodies(self) -> list[str]:
        return [note["body"] for note in self.notes.values()]

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    @property
    def gitlab_api(self) -> str:
        return self.url + GITLAB_PREFIX

    @property
    def github_api(self) -> str:
        return self.url + GITHUB_PREFIX


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        state = self.server.state
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        state.calls.append(Call(self.command, split.path, query, headers))
        sent = self.headers.get("PRIVATE-TOKEN") or self.headers.get("Authorization") or ""
        if state.redirect_to:
            self._send(301, {"message": "moved"}, {"Location": state.redirect_to})
        elif state.reply_text is not None:
            self._send_raw(200, state.reply_text.encode())
        elif state.fail:
            self._send(state.fail, {"message": f"failure {state.fail} for token {sent}"})
        elif split.path.startswith(GITLAB_PREFIX):
            self._gitlab(split.path, query, raw)
        elif split.path.startswith(GITHUB_PREFIX):
            self._github(split.path, query, raw)
        else:
            self._send(404, {"message": "404 Not Found"})

    # ------------------------------------------------------------------------ GitLab

    def _gitlab(self, path: str, query: dict[str, str], raw: bytes) -> None:
        state = self.server.state
        sent = self.headers.get("PRIVATE-TOKEN")
        if sent != state.token:
            self._send(401, {"message": f"401 Unauthorized (got {sent})"})
            return
        listing, item = _GITLAB_LIST.match(path), _GITLAB_ITEM.match(path)
        found = listing or item
        if not found or urllib.parse.unquote(found[1]) != PROJECT or found[2] != MERGE_REQUEST:
            self._send(404, {"message": "404 Project Not Found"})
            return
        if listing and self.command == "GET":
            newest_first = sorted(state.notes.values(), key=lambda n: -n["id"])
            page, per_page = int(query.get("page", 1)), _per_page(query)
            chunk = newest_first[(page - 1) * per_page : page * per_page]
            more = page * per_page < len(newest_first)
            headers = {"X-Page": str(page), "X-Next-Page": str(page + 1) if more else ""}
            self._send(200, chunk, headers)
        elif listing and self.command == "POST":
            note_id = state.add(json.loads(raw)["body"])
            self._send(201, state.notes[note_id])
        elif item and self.command == "PUT":
            self._update(int(item[3]), raw)
        else:
            self._send(405, {"message": "405 Method Not Allowed"})

    # ------------------------------------------------------------------------ GitHub

    def _github(self, path: str, query: dict[str, str], raw: bytes) -> None:
        state = self.server.state
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            self._send(401, {"message": "Bad credentials"})
            return
        listing, item = _GITHUB_LIST.match(path), _GITHUB_ITEM.match(path)
        owner_repo = f"{(listing or item)[1]}/{(listing or item)[2]}" if listing or item else ""
        if owner_repo != REPOSITORY or (listing and int(listing[3]) != PULL_REQUEST):
            self._send(404, {"message": "Not Found"})
            return
        if listing and self.command == "GET":
            oldest_first = sorted(state.notes.values(), key=lambda n: n["id"])
            page, per_page = int(query.get("page", 1)), _per_page(query)
            chunk = [{"id": n["id"], "body": n["body"]} for n in oldest_first]
            chunk = chunk[(page - 1) * per_page : page * per_page]
            headers = {}
            if page * per_page < len(oldest_first):
                base = state.next_link_base or state.url
                link = f"{base}{path}?per_page={per_page}&page={page + 1}"
                headers["Link"] = f'<{link}>; rel="next", <{link}>; rel="last"'
            self._send(200, chunk, headers)
        elif listing and self.command == "POST":
            comment_id = state.add(json.loads(raw)["body"])
            self._send(201, state.notes[comment_id])
        elif item and self.command == "PATCH":
            self._update(int(item[3]), raw)
        else:
            self._send(405, {"message": "Method Not Allowed"})

    def _update(self, note_id: int, raw: bytes) -> None:
        state = self.server.state
        if note_id not in state.notes:
            self._send(404, {"message": "404 Not found"})
            return
        state.notes[note_id]["body"] = json.loads(raw)["body"]
        self._send(200, state.notes[note_id])

    def _send(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(data).encode(), headers)

    def _send_raw(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _per_page(query: dict[str, str]) -> int:
    return max(1, min(MAX_PER_PAGE, int(query.get("per_page", 20))))


class _Server(ThreadingHTTPServer):
    state: ReviewServer


@contextmanager
def serving(token: str) -> Iterator[ReviewServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = ReviewServer(token=token, url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
