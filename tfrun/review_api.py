"""One comment on a merge request (GitLab notes) or pull request (GitHub issue comments):
find it by its marker, create it, update it. Standard library only (urllib).

GitLab: `GET /projects/:id/merge_requests/:iid/notes?per_page=100&page=N` (the next page in
`X-Next-Page`), `POST` to that path, `PUT .../notes/:note_id`; the token in `PRIVATE-TOKEN`.
GitHub: `GET /repos/{owner}/{repo}/issues/{n}/comments?per_page=100` (the next page in
`Link: <...>; rel="next"`), `POST` to that path, `PATCH .../issues/comments/{id}`; the token
as `Authorization: Bearer`.

The token goes in a header only, and is cut out of every message built from an answer.
Redirects are not followed (urllib would send the header to wherever they point), and a
GitHub next page outside the API's URL is refused for the same reason.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any

from tfrun import __version__
from tfrun.errors import ConfigError, ServiceError

TIMEOUT_S = 30.0
# Far more notes than a merge request holds: a server that always names a next page ends here.
MAX_PAGES = 1000
GITLAB_TOKEN = "TFRUN_GITLAB_TOKEN"
GITHUB_TOKEN = "GITHUB_TOKEN"
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class Site:
    name: str  # GitLab, GitHub
    url_variable: str  # where the API's URL came from
    where: str  # the merge request, in words: "merge request !7 of project 42"
    fix_401: str
    fix_403: str
    fix_404: str


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    data: Any


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx comes back as an HTTPError, reported below


class Client:
    """Calls to one API with one token; every failure is a TfrunError naming the site."""

    def __init__(self, site: Site, headers: Mapping[str, str], token: str) -> None:
        self.site = site
        self._headers = {"User-Agent": f"tfrun/{__version__}", **headers}
        self._token = token
        self._open = urllib.request.build_opener(_NoRedirect).open

    def call(self, method: str, url: str, body: Mapping[str, Any] | None = None) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._open(request, timeout=TIMEOUT_S) as response:
                status, answer_headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            raise self._refused(method, url, error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ServiceError(
                f"could not reach {self.site.name} at {method} {url} ({self.site.url_variable}): "
                f"{self._clean(str(reason))}. Check that the URL is right and that this job can "
                f"reach {self.site.name}, then run the job again."
            ) from None
        try:
            loaded = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise ServiceError(
                f"{self.site.name} answered {method} {url} with something that is not JSON "
                f"(status {status}); is {self.site.url_variable} the API's URL?"
            ) from None
        return Reply(status, answer_headers, loaded)

    def _refused(self, method: str, url: str, error: urllib.error.HTTPError) -> Exception:
        status = f"{error.code} {error.reason}"
        said = _message(error)
        detail = f" {self.site.name} said: {self._clean(said)}." if said else ""
        at = f"{method} {url}"
        name = self.site.name
        if error.code == 401:
            return ConfigError(
                f"{name} refused the token ({status}) at {at}.{detail} {self.site.fix_401}"
            )
        if error.code == 403:
            return ConfigError(
                f"{name} forbade this ({status}) at {at}.{detail} {self.site.fix_403}"
            )
        if error.code == 404:
            return ConfigError(
                f"{name} found no {self.site.where} ({status}) at {at}.{detail} {self.site.fix_404}"
            )
        if 300 <= error.code < 400:
            to = self._clean(error.headers.get("Location") or "elsewhere")
            return ConfigError(
                f"{name} answered {at} with a redirect ({status}) to {to}; tfrun does not "
                f"follow it with the token. Set {self.site.url_variable} to the API's own URL."
            )
        if error.code == 429 or error.code >= 500:
            return ServiceError(
                f"{name} failed ({status}) at {at}.{detail} Run the job again later; "
                "the comment is updated in place then."
            )
        return ConfigError(f"{name} refused {at} ({status}).{detail}")

    def _clean(self, text: str) -> str:
        """`text` with the token cut out, one line, at most 300 characters."""
        if self._token:
            text = text.replace(self._token, "[token]")
        text = " ".join(text.split())
        return text if len(text) <= 300 else text[:297] + "..."

    def pages(self, first: str, next_url: Callable[[Reply, str], str | None]) -> Iterator[Any]:
        """Every item of a list answer, page after page, while `next_url` names one."""
        url: str | None = first
        for _ in range(MAX_PAGES):
            if url is None:
                return
            answer = self.call("GET", url)
            if not isinstance(answer.data, list):
                raise ServiceError(
                    f"{self.site.name} answered GET {url} with something that is not a list "
                    f"of comments; is {self.site.url_variable} the API's URL?"
                )
            yield from answer.data
            url = next_url(answer, url)


def _message(error: urllib.error.HTTPError) -> str:
    try:
        raw = error.read().decode(errors="replace")
    except OSError:
        return ""
    try:
        loaded = json.loads(raw)
    except ValueError:
        return raw.strip()
    if isinstance(loaded, dict):
        said = loaded.get("message") or loaded.get("error") or loaded
        return said if isinstance(said, str) else json.dumps(said)
    return raw.strip()


# ---------------------------------------------------------------------------- the threads


@dataclass(frozen=True)
class Posted:
    id: int
    created: bool


class Thread:
    """The comments of one merge or pull request."""

    def __init__(self, client: Client, list_url: str, item_url: str, update: str) -> None:
        self.client = client
        self._list_url = list_url  # creates too
        self._item_url = item_url  # "{id}" replaced
        self._update = update  # PUT on GitLab, PATCH on GitHub

    def _first(self) -> str:
        return f"{self._list_url}?per_page=100"

    def _next(self, answer: Reply, url: str) -> str | None:
        raise NotImplementedError

    def find(self, is_ours: Callable[[str], bool]) -> int | None:
        """The first comment (in the API's order) whose body `is_ours`."""
        for item in self.client.pages(self._first(), self._next):
            if not isinstance(item, dict) or item.get("system"):  # GitLab's own notes
                continue
            body, found = item.get("body"), item.get("id")
            if isinstance(body, str) and isinstance(found, int) and is_ours(body):
                return found
        return None

    def post(self, body: str, is_ours: Callable[[str], bool]) -> Posted:
        """Update the comment that `is_ours`, or create one."""
        found = self.find(is_ours)
        if found is None:
            answer = self.client.call("POST", self._list_url, {"body": body})
            made = answer.data.get("id") if isinstance(answer.data, dict) else None
            return Posted(made if isinstance(made, int) else 0, created=True)
        self.client.call(self._update, self._item_url.format(id=found), {"body": body})
        return Posted(found, created=False)


class GitLabThread(Thread):
    def _first(self) -> str:
        return f"{self._list_url}?per_page=100&page=1"

    def _next(self, answer: Reply, url: str) -> str | None:
        page = (answer.headers.get("X-Next-Page") or "").strip()
        if not page.isdigit():
            return None
        return f"{self._list_url}?per_page=100&page={page}"


class GitHubThread(Thread):
    def __init__(self, client: Client, api: str, list_url: str, item_url: str) -> None:
        super().__init__(client, list_url, item_url, "PATCH")
        self._api = api

    def _next(self, answer: Reply, url: str) -> str | None:
        for link in answer.headers.get_all("Link") or []:
            found = _NEXT_LINK.search(link)
            if found:
                target = found[1]
                if not target.startswith(self._api + "/"):
                    raise ServiceError(
                        f"GitHub named the next page of comments at {target}, outside "
                        f"GITHUB_API_URL ({self._api}); tfrun does not send the token there."
                    )
                return target
        return None


# ---------------------------------------------------------------------------- from CI's variables


def gitlab(environ: Mapping[str, str]) -> GitLabThread | None:
    """The merge request of this GitLab pipeline; None when it is not a merge request's."""
    iid = environ.get("CI_MERGE_REQUEST_IID", "").strip()
    if not iid:
        return None
    api = _url(environ, "CI_API_V4_URL", "GitLab")
    project = _required(environ, "CI_PROJECT_ID", "GitLab")
    token = _required(environ, GITLAB_TOKEN, "GitLab", token=True)
    site = Site(
        name="GitLab",
        url_variable="CI_API_V4_URL",
        where=f"merge request !{iid} of project {project}",
        fix_401=f"{GITLAB_TOKEN} is wrong, expired or revoked: make a new project access "
        "token with the api scope and the Reporter role or higher.",
        fix_403=f"{GITLAB_TOKEN} may not write notes here: it needs the api scope and the "
        "Reporter role or higher on the project (CI_JOB_TOKEN cannot write notes).",
        fix_404=f"Check CI_API_V4_URL, CI_PROJECT_ID and CI_MERGE_REQUEST_IID; GitLab also "
        f"answers 404 when {GITLAB_TOKEN} cannot see the project.",
    )
    client = Client(site, {"PRIVATE-TOKEN": token}, token)
    base = f"{api}/projects/{_segment(project)}/merge_requests/{_segment(iid)}/notes"
    return GitLabThread(client, base, base + "/{id}", "PUT")


def github(environ: Mapping[str, str]) -> GitHubThread | None:
    """The pull request of this GitHub Actions run; None when the event is not a pull
    request's (a push, a schedule) or there is no event at all (not in Actions)."""
    number = pull_request_number(environ)
    if number is None:
        return None
    api = _url(environ, "GITHUB_API_URL", "GitHub")
    repository = _required(environ, "GITHUB_REPOSITORY", "GitHub")
    if repository.count("/") != 1:
        raise ConfigError(f"GITHUB_REPOSITORY is '{repository}'; GitHub sets it to owner/name.")
    token = _required(environ, GITHUB_TOKEN, "GitHub", token=True)
    site = Site(
        name="GitHub",
        url_variable="GITHUB_API_URL",
        where=f"pull request #{number} in {repository}",
        fix_401=f"{GITHUB_TOKEN} is wrong or expired: pass the job's token "
        "(env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}).",
        fix_403=f"{GITHUB_TOKEN} may not write comments here: give the job "
        "`permissions: pull-requests: write`. A pull request from a fork gets a read-only "
        "token.",
        fix_404="Check GITHUB_API_URL and GITHUB_REPOSITORY; GitHub also answers 404 when the "
        "token cannot see the repository.",
    )
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    client = Client(site, headers, token)
    owner, name = (_segment(part) for part in repository.split("/"))
    return GitHubThread(
        client,
        api,
        f"{api}/repos/{owner}/{name}/issues/{number}/comments",
        f"{api}/repos/{owner}/{name}/issues/comments/{{id}}",
    )


def pull_request(environ: Mapping[str, str]) -> Mapping[str, Any] | None:
    """`pull_request` of the event that started this GitHub Actions run, if it has one."""
    path = environ.get("GITHUB_EVENT_PATH", "").strip()
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            event = json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"GITHUB_EVENT_PATH names {path}, which cannot be read as JSON: {error}."
        ) from None
    pull = event.get("pull_request") if isinstance(event, dict) else None
    return pull if isinstance(pull, dict) else None


def pull_request_number(environ: Mapping[str, str]) -> int | None:
    number = (pull_request(environ) or {}).get("number")
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def _required(environ: Mapping[str, str], name: str, site: str, *, token: bool = False) -> str:
    value = environ.get(name, "").strip()
    if value:
        return value
    if token:
        raise ConfigError(
            f"{name} is not set, so tfrun cannot write the plan comment on {site}. "
            + (
                "Set it to a project access token with the api scope and the Reporter role "
                "or higher, as a masked CI/CD variable (docs/ci.md)."
                if site == "GitLab"
                else "Pass the job's token: env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}."
            )
        )
    raise ConfigError(f"{name} is not set; {site} sets it in its jobs. Is this a {site} job?")


def _url(environ: Mapping[str, str], name: str, site: str) -> str:
    value = _required(environ, name, site).rstrip("/")
    if urllib.parse.urlsplit(value).scheme not in ("http", "https"):
        raise ConfigError(f"{name} is '{value}', which is not an http(s) URL.")
    return value


def _segment(value: str) -> str:
    """A path segment: a GitLab project may be named by its path (group/project)."""
    return urllib.parse.quote(value, safe="")
