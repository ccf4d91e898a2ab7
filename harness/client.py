"""The gateway client: the one place that knows how to speak the gateway's HTTP API.

Every part that submits evaluations or reads them (parity's dispatcher, the chaos workload and its
probes, the stack's own checks, the gate's admin calls, the Locust users) goes through here, so an
answer means the same thing everywhere:

- ``EvalRequest.body()`` is what ``POST /api/eval`` is sent;
- ``answer_of(status, body, text)`` reads the gateway's answer as Jepsen's three completions:
  ``ok`` (201: accepted, with its ``eval_id`` and ``routes``), ``fail`` (certainly not accepted: a
  4xx, or a 503 whose body says nothing was queued, or a connection that was refused so the
  request never arrived) or ``info`` (unknown: a timeout, a reset, any other answer; the
  evaluation may still run). A refused submission keeps the gateway's problems;
- ``record_of(json)`` reads ``GET /api/eval/{id}`` as a ``Record``.

``GatewayClient`` is those over ``requests`` (one session per thread). The Locust users use the
same three functions over gevent's HTTP client (``harness/load/users.py``): the transport differs,
the protocol does not. ``recorded(history, ...)`` runs one call and records it as ``invoke`` then
its completion, the history format every part shares (``harness/history.py``).

Errors: ``submit`` never raises for network trouble (that is an ``info`` or ``fail`` answer);
reading a record raises ``ClientError`` naming the URL when the gateway cannot be reached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import requests

from harness.errors import HarnessError
from harness.history import History, Op
from harness.vocabulary import TERMINAL, Record, Result, Route

Completion = Literal["ok", "fail", "info"]
NOTHING_QUEUED = "nothing was queued"  # the gateway's 503 after it rolled a submission back


class ClientError(HarnessError):
    """The gateway could not be reached or answered something that is not its API."""


@dataclass(frozen=True)
class EvalRequest:
    """One submission as the gateway takes it (``route`` None: the gateway's split decides)."""

    code: str
    language: str = "python"
    route: Route | None = None
    priority: int | None = None
    batch: bool | None = None
    timeout_s: float | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "language": self.language}
        for key in ("route", "priority", "batch", "timeout_s"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        return body


@dataclass(frozen=True)
class Answer:
    """The gateway's answer to one submission, as a completion: ok, fail or info."""

    type: Completion
    eval_id: str | None = None
    routes: tuple[str, ...] = ()
    status: int | None = None  # the HTTP status; None when no answer came
    error: str | None = None  # for fail and info: what happened, short
    problems: tuple[dict[str, Any], ...] = field(default=(), compare=False)  # a 4xx's {field, rule}

    @property
    def value(self) -> dict[str, Any] | None:
        """What a history's completion records of it (the gateway's answer for an ``ok``)."""
        return {"eval_id": self.eval_id, "routes": list(self.routes)} if self.type == "ok" else None


def answer_of(status: int, body: Any, text: str) -> Answer:
    """ok / fail / info for a gateway answer (see the module docstring)."""
    if status == 201 and isinstance(body, dict) and body.get("eval_id"):
        return Answer("ok", str(body["eval_id"]), tuple(str(r) for r in body.get("routes") or ()), status)
    short = f"{status} {text[:300]}"
    problems = tuple(body.get("problems") or ()) if isinstance(body, dict) else ()
    if 400 <= status < 500 or (status == 503 and NOTHING_QUEUED in text):
        return Answer("fail", status=status, error=short, problems=problems)
    return Answer("info", status=status, error=short)


def record_of(doc: Any) -> Record:
    """A record as ``GET /api/eval/{id}`` serves it; raises ClientError for anything else."""
    if not isinstance(doc, dict) or "results" not in doc or not isinstance(doc["results"], dict):
        raise ClientError(f"not an evaluation record: {str(doc)[:200]}")
    results = {str(p): cast(Result, r) for p, r in doc["results"].items() if isinstance(r, dict)}
    return {
        "eval_id": doc.get("eval_id"), "language": doc.get("language"), "code": doc.get("code"),
        "routes": list(doc.get("routes") or []), "priority": int(doc.get("priority", 5)),
        "batch": bool(doc.get("batch", False)), "timeout_s": doc.get("timeout_s"),
        "created_at": float(doc.get("created_at") or 0.0), "results": results,
        "done": bool(doc.get("done")) or (bool(results) and all(r.get("status") in TERMINAL
                                                                 for r in results.values())),
        "fallback": doc.get("fallback"),
    }


class GatewayClient:
    """The gateway's API over ``requests``; safe to share between threads (a session per thread)."""

    def __init__(self, base_url: str, *, request_timeout_s: float = 10.0, admin_token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.request_timeout_s = request_timeout_s
        self.admin_token = admin_token
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def close(self) -> None:
        """Close this thread's session (other threads' sessions close when they are collected)."""
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- submissions and records ---------------------------------------------------------------

    def submit(self, request: EvalRequest, *, timeout_s: float | None = None) -> Answer:
        """POST one submission and read the answer; never raises for network trouble."""
        timeout = timeout_s or self.request_timeout_s
        try:
            resp = self.session.post(f"{self.base_url}/api/eval", json=request.body(),
                                     timeout=(min(2.0, timeout), timeout))
        except requests.ConnectTimeout as exc:
            return Answer("fail", error=f"connect timeout: {exc}")
        except requests.ConnectionError as exc:
            text = str(exc)
            if "Connection refused" in text or "NewConnectionError" in text:
                return Answer("fail", error=f"connection refused: {text[:300]}")
            return Answer("info", error=f"{type(exc).__name__}: {text[:300]}")
        except requests.RequestException as exc:  # a read timeout and the rest: it may have happened
            return Answer("info", error=f"{type(exc).__name__}: {str(exc)[:300]}")
        try:
            body = resp.json()
        except ValueError:
            body = None
        return answer_of(resp.status_code, body, resp.text)

    def record(self, eval_id: str, *, wait_s: float = 0.0) -> Record | None:
        """The evaluation's record (long-polling up to ``wait_s`` until it is done); None if unknown (404)."""
        url = f"{self.base_url}/api/eval/{eval_id}"
        try:
            resp = self.session.get(url, params={"wait": max(0.0, min(wait_s, 120.0))},
                                    timeout=max(wait_s, 0.0) + self.request_timeout_s)
        except requests.RequestException as exc:
            raise ClientError(f"cannot read evaluation {eval_id} from {url}: {exc}; is the stack running?") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise ClientError(f"reading {url} answered {resp.status_code}: {resp.text[:300]}")
        return record_of(resp.json())

    def await_record(self, eval_id: str, *, timeout_s: float, poll_s: float = 20.0) -> Record | None:
        """Long-poll until every route of the evaluation is terminal or ``timeout_s`` passes; returns the
        last record seen (check ``done``), None if the gateway does not know the evaluation."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            record = self.record(eval_id, wait_s=max(min(remaining, poll_s), 0.0))
            if record is None or record["done"] or deadline - time.monotonic() <= 0:
                return record

    # -- the admin endpoint --------------------------------------------------------------------

    def _admin_headers(self) -> dict[str, str]:
        if not self.admin_token:
            raise ClientError("the gateway's admin endpoint needs a token: give admin_token (--admin-token)")
        return {"Authorization": f"Bearer {self.admin_token}"}

    def split(self) -> dict[str, Any]:
        """``GET /api/admin/split``: the gateway's routing settings now."""
        return self._admin("get", {})

    def set_split(self, **settings: Any) -> dict[str, Any]:
        """``PUT /api/admin/split`` with the given settings (e.g. ``celery_percentage=75``)."""
        return self._admin("put", settings)

    def _admin(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/api/admin/split"
        try:
            resp = self.session.request(method.upper(), url, json=body or None, headers=self._admin_headers(),
                                        timeout=self.request_timeout_s)
        except requests.RequestException as exc:
            raise ClientError(f"cannot reach the gateway's admin endpoint {url}: {exc}") from exc
        if resp.status_code != 200:
            raise ClientError(f"{method.upper()} {url} answered {resp.status_code}: {resp.text[:300]}")
        doc: dict[str, Any] = resp.json()
        return doc


def recorded(history: History, process: str | int, f: str, call: Callable[[], Answer], *,
             path: str | None = None, value: dict[str, Any] | None = None) -> tuple[Op, Answer]:
    """Run ``call`` and record it as an ``invoke`` then its completion; an interruption is ``info``
    (the history stays paired) and is raised again."""
    invoke = history.invoke(process, f, path=path, value=value)
    try:
        answer = call()
    except BaseException as exc:
        history.complete(invoke, "info", error=f"interrupted: {type(exc).__name__}")
        raise
    done = history.complete(invoke, answer.type, eval_id=answer.eval_id, value=answer.value, error=answer.error)
    return done, answer


def wait_terminal(gateway: str, eval_id: str, timeout_s: float = 30.0) -> Record:
    """The record of ``eval_id`` once every route is terminal (or the last one seen at ``timeout_s``);
    raises ClientError when the gateway does not know it."""
    with GatewayClient(gateway) as client:
        record = client.await_record(eval_id, timeout_s=timeout_s)
    if record is None:
        raise ClientError(f"the gateway at {gateway} does not know evaluation {eval_id}")
    return record
