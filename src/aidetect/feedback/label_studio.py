"""The Label Studio review queue: push kept images as tasks, pull reviewers' decisions as labels.

The one adapter to Label Studio, over its REST API with httpx. Why not ``label-studio-sdk``: every SDK
release requires OpenCV 4 (``opencv-python<5``, or since 2.0.20 ``opencv-python-headless<4.13``, which
needs ``numpy<2.3``; 2.1.x also ``pyjwt<2.14``), and the ML stack pins OpenCV 5, numpy 2.4 and PyJWT
2.15; the few endpoints used here (projects, task import, task list, export, users, token refresh)
are stable. Auth follows the SDK's rule: a personal access token (a JWT refresh token) is
exchanged at ``/api/token/refresh/`` for an access token sent as ``Bearer``; any other token is a
legacy token sent as ``Token``.

``push``: one task per kept image not yet in the project (data: the image, its sha256, model and
score; meta: sha256, model name/version), with the model's label as a prediction (pre-annotation,
with its score), least certain first. ``pull``: every finished annotation (not skipped) becomes a
``LabelRecord(source="label-studio", author=<annotator's email>, note="ls:<task>:<annotation>")``;
a record already in the log with that note and label is not appended again, so pulling twice adds
nothing, and a reviewer who changes their answer adds one new record (their newest vote counts).
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import httpx

from aidetect.data.labels import LabelMatcher
from aidetect.errors import ConfigError, DataError, ServiceUnavailableError
from aidetect.feedback.config import ReviewConfig
from aidetect.feedback.labels import SHA256, LabelLog, LabelRecord

if TYPE_CHECKING:
    import pandas as pd

    from aidetect.feedback.capture import ImageStore

SOURCE = "label-studio"
FROM_NAME, TO_NAME = "label", "image"  # the labeling config's Choices and Image tags
PAGE = 100
IMPORT_BATCH = 50


def labeling_config(labels: Sequence[str]) -> str:
    """One image, one single choice over the model's label set."""
    choices = "".join(f"<Choice value={quoteattr(x)}/>" for x in labels)
    return (
        f'<View><Image name="{TO_NAME}" value="$image"/>'
        f'<Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="true">'
        f"{choices}</Choices>"
        "</View>"
    )


def _jwt_type(token: str) -> str | None:
    """The ``token_type`` claim of a JWT (unverified: only to pick the auth scheme), else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims.get("token_type") if isinstance(claims, dict) else None


class Client:
    """A Label Studio server: authenticated JSON calls; every failure is one clear error."""

    def __init__(self, url: str, token: str, timeout_s: float = 30.0) -> None:
        if not token:
            raise ConfigError("review: no Label Studio API token given")
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
        self._token = token
        self._auth = ""

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"Label Studio at {self.url} is unreachable ({type(exc).__name__}: {exc})"
            ) from None

    def _authorization(self) -> str:
        if not self._auth:
            if _jwt_type(self._token) == "refresh":  # a personal access token
                resp = self._send("POST", "/api/token/refresh/", {}, json={"refresh": self._token})
                self._check(resp, "POST /api/token/refresh/")
                self._auth = f"Bearer {resp.json()['access']}"
            else:
                self._auth = f"Token {self._token}"
        return self._auth

    def _check(self, resp: httpx.Response, what: str) -> None:
        if resp.status_code in (401, 403):
            raise ConfigError(
                f"Label Studio at {self.url} refused the API token ({resp.status_code} on {what})",
                hint="check the token in the env var named by review.token_env",
            )
        if resp.status_code >= 400:
            raise ServiceUnavailableError(
                f"Label Studio at {self.url} answered {resp.status_code} to {what}: {resp.text[:300]}"
            )

    def call(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._send(method, path, {"Authorization": self._authorization()}, **kw)
        if resp.status_code == 401 and self._auth.startswith("Bearer"):  # access token expired
            self._auth = ""
            resp = self._send(method, path, {"Authorization": self._authorization()}, **kw)
        self._check(resp, f"{method} {path}")
        try:
            return resp.json()
        except ValueError:
            raise ServiceUnavailableError(
                f"Label Studio at {self.url}: {method} {path} did not answer JSON"
            ) from None

    def find_project(self, title: str) -> dict[str, Any] | None:
        page = self.call("GET", "/api/projects", params={"title": title, "page_size": PAGE})
        return next((p for p in page.get("results", []) if p.get("title") == title), None)

    def tasks(self, project_id: int) -> Iterator[dict[str, Any]]:
        """Every task of the project (without annotations or predictions)."""
        seen, page = 0, 1
        while True:
            resp = self.call(
                "GET", "/api/tasks", params={"project": project_id, "page": page, "page_size": PAGE}
            )
            batch = resp.get("tasks", [])
            yield from batch
            seen += len(batch)
            if not batch or seen >= int(resp.get("total", 0)):
                return
            page += 1


def client_from_config(cfg: ReviewConfig) -> Client:
    cfg.validate()
    token = os.environ.get(cfg.token_env, "")
    if not token:
        raise ConfigError(
            f"review.token_env: the env var {cfg.token_env} holding the Label Studio token is not set"
        )
    return Client(cfg.url, token, cfg.timeout_s)


@dataclass
class PushReport:
    project_id: int
    created_project: bool = False
    kept: int = 0  # distinct kept images in the window
    already: int = 0  # already tasks in the project
    pushed: int = 0
    missing: int = 0  # kept rows whose bytes the store no longer has
    too_large: int = 0
    deferred: int = 0  # over review.max_tasks: next run

    def summary(self) -> str:
        return (
            f"project {self.project_id}{' (created)' if self.created_project else ''}: "
            f"{self.pushed} tasks pushed, "
            f"{self.already} already there, {self.kept} kept images in the window, {self.missing} no longer "
            f"stored, {self.too_large} too large, {self.deferred} left for the next push"
        )


def _score(label: str, p_fake: float, real_label: str) -> float:
    """The model's confidence in its own label (the fake score, or one minus it for the real class)."""
    return 1.0 - p_fake if label == real_label else p_fake


def _image_ref(cfg: ReviewConfig, sha: str, data: bytes) -> str:
    if cfg.image_url:
        return cfg.image_url.format(sha256=sha)
    mime = _mime(data)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _mime(data: bytes) -> str:
    """The image's MIME type from its header (PIL reads no pixels here)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return Image.MIME.get(img.format or "", "application/octet-stream")
    except (UnidentifiedImageError, OSError):
        return "application/octet-stream"


def kept_rows(cfg: ReviewConfig, model_name: str, model_version: str | None = None) -> pd.DataFrame:
    """The newest inference-log row per kept image of ``model_name`` (one version, or all) in the last
    ``review.since``."""
    from aidetect.monitoring import check
    from aidetect.monitoring.config import load_drift_config, parse_duration
    from aidetect.monitoring.window import read_window

    root = cfg.log_uri or check.log_uri(load_drift_config())  # the log drift and live quality read
    df = read_window(
        root,
        model_name,
        since=parse_duration(cfg.since, "review.since"),
        model_version=model_version,
        columns=("label", "probability_fake"),
        optional={"sha256": "", "kept": False},
    )
    df = df[df["kept"].astype(bool) & df["sha256"].astype(str).str.fullmatch(SHA256.pattern[1:-1])]
    return df.sort_values("ts").drop_duplicates("sha256", keep="last")


def push(
    cfg: ReviewConfig,
    client: Client,
    store: ImageStore,
    model_name: str,
    labels: Sequence[str],
    real_label: str = "",
    model_version: str | None = None,
) -> PushReport:
    """Create the project if absent and one task per kept image not yet in it (see the module doc)."""
    rows = kept_rows(cfg, model_name, model_version)
    real_label = real_label or labels[0]
    project = client.find_project(cfg.project)
    created = project is None
    if project is None:
        project = client.call(
            "POST", "/api/projects", json={"title": cfg.project, "label_config": labeling_config(labels)}
        )
    report = PushReport(project_id=int(project["id"]), created_project=created, kept=len(rows))
    present = set() if created else {_sha_of(task) for task in client.tasks(report.project_id)}
    rows = rows[~rows["sha256"].isin(present)]
    report.already = report.kept - len(rows)
    rows = rows.assign(_doubt=(rows["probability_fake"].astype(float) - 0.5).abs()).sort_values("_doubt")
    tasks: list[dict[str, Any]] = []
    for row in rows.itertuples(index=False):
        if len(tasks) >= cfg.max_tasks:
            report.deferred += 1
            continue
        try:
            data = store.get(str(row.sha256))
        except DataError:
            report.missing += 1
            continue
        if not cfg.image_url and len(data) > cfg.max_image_bytes:
            report.too_large += 1
            continue
        tasks.append(_task(cfg, row, data, real_label))
    for i in range(0, len(tasks), IMPORT_BATCH):
        client.call("POST", f"/api/projects/{report.project_id}/import", json=tasks[i : i + IMPORT_BATCH])
        report.pushed += len(tasks[i : i + IMPORT_BATCH])
    return report


def _task(cfg: ReviewConfig, row: Any, data: bytes, real_label: str) -> dict[str, Any]:
    sha, label, p_fake = str(row.sha256), str(row.label), float(row.probability_fake)
    meta = {"sha256": sha, "model_name": str(row.model_name), "model_version": str(row.model_version)}
    model = f"{meta['model_name']}/{meta['model_version']}"
    return {
        "data": {
            "image": _image_ref(cfg, sha, data),
            "sha256": sha,
            "model": model,
            "probability_fake": p_fake,
        },
        "meta": meta,
        "predictions": [
            {
                "model_version": model,
                "score": _score(label, p_fake, real_label),
                "result": [
                    {
                        "from_name": FROM_NAME,
                        "to_name": TO_NAME,
                        "type": "choices",
                        "value": {"choices": [label]},
                    }
                ],
            }
        ],
    }


@dataclass
class PullReport:
    project_id: int | None
    annotations: int = 0  # finished annotations seen
    added: int = 0
    already: int = 0
    skipped: list[str] = field(default_factory=list)  # why some annotations gave no label
    log_uri: str = ""

    def summary(self) -> str:
        if self.project_id is None:
            return "no review project yet: nothing to pull (run `aidetect review push` first)"
        why = f"; skipped {len(self.skipped)}: {'; '.join(self.skipped[:5])}" if self.skipped else ""
        return (
            f"project {self.project_id}: {self.annotations} finished annotations, {self.added} labels added, "
            f"{self.already} already in the log{why}"
        )


def _sha_of(task: dict[str, Any]) -> str:
    """The image a task shows (its meta, else its data)."""
    return str((task.get("meta") or {}).get("sha256") or (task.get("data") or {}).get("sha256", ""))


def _choice(annotation: dict[str, Any]) -> str | None:
    for item in annotation.get("result") or []:
        if item.get("from_name") == FROM_NAME and item.get("type") == "choices":
            picked = (item.get("value") or {}).get("choices") or []
            return str(picked[0]) if picked else None
    return None


def pull(cfg: ReviewConfig, client: Client, log: LabelLog, labels: Sequence[str]) -> PullReport:
    """Append every finished annotation not yet in ``log`` (all in one object, or nothing)."""
    project = client.find_project(cfg.project)
    if project is None:
        return PullReport(project_id=None)
    report = PullReport(project_id=int(project["id"]))
    exported = client.call("GET", f"/api/projects/{report.project_id}/export", params={"exportType": "JSON"})
    users = {
        u["id"]: u.get("email") or u.get("username") or str(u["id"])
        for u in client.call("GET", "/api/users/")
    }
    have = {(r.note, r.label) for r in log.read() if r.source == SOURCE}
    matcher = LabelMatcher(labels)
    new: list[LabelRecord] = []
    for task in exported:
        meta, sha = task.get("meta") or {}, _sha_of(task)
        for ann in task.get("annotations") or []:
            if ann.get("was_cancelled"):
                continue
            report.annotations += 1
            note = f"ls:{task['id']}:{ann['id']}"
            choice = _choice(ann)
            label = matcher.get(choice) if choice else None
            if not SHA256.match(sha) or label is None:
                why = "no sha256" if not SHA256.match(sha) else f"label {choice!r}"
                report.skipped.append(f"{note} ({why})")
                continue
            if (note, label) in have:
                report.already += 1
                continue
            who = ann.get("completed_by")
            author = users.get(who.get("id") if isinstance(who, dict) else who, str(who or ""))
            new.append(
                LabelRecord(
                    sha256=sha,
                    label=label,
                    source=SOURCE,
                    author=author,
                    model_name=str(meta.get("model_name", "")),
                    model_version=str(meta.get("model_version", "")),
                    ts=str(ann.get("updated_at") or ann.get("created_at")),
                    note=note,
                )
            )
            have.add((note, label))
    if new:
        report.log_uri = log.append(new)
    report.added = len(new)
    return report
