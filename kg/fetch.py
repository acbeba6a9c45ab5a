"""Fetch studies from the ClinicalTrials.gov API v2 into a folder of one-study JSON files.

The pure parts are plain functions over values: request parameters (:func:`build_params`,
:func:`page_params`), the reading of one HTTP answer (:func:`interpret_response`, :func:`parse_page`),
study identity and version (:func:`identify_study`, :func:`classify_version`) and the resume state
(:class:`FetchState`, :func:`plan_run`).  The I/O edge is small: :class:`PageClient` (httpx for HTTP,
tenacity for retries, :class:`RateLimiter` for pacing) and :func:`run_fetch`, which writes every file
atomically.

Layout of the output folder::

    DIR/studies/NCT01234567.json   one API v2 study object per file (what ``cartkg records DIR`` reads)
    DIR/.fetch-state.json          query, next page token and counts, rewritten after each page
    DIR/.fetch-seen.txt            NCT ids listed so far in this run (to find saved studies no longer listed)
    DIR/.fetch.lock                held while a fetch writes into DIR

A study's version is ``protocolSection.statusModule.lastUpdatePostDateStruct.date``; a study whose saved
version equals the fetched one is not rewritten.  When a complete listing without ``--since`` ends, the
saved studies it did not list are reported (``not_listed``), never deleted.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from kg import __version__
from kg.errors import CartkgError, UsageError

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
DEFAULT_QUERY = "CAR-T OR chimeric antigen receptor"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000  # the API coerces larger page sizes down to 1,000
STUDIES_ENDPOINT = "/studies"
STUDIES_DIR = "studies"
STATE_NAME = ".fetch-state.json"
SEEN_NAME = ".fetch-seen.txt"
LOCK_NAME = ".fetch.lock"
TEMP_SUFFIX = ".part"
STATE_VERSION = 1

NCT_RE = re.compile(r"NCT\d{8}")
DATE_RE = re.compile(r"\d{4}-\d{2}(-\d{2})?")
SINCE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
ID_FIELD = "protocolSection.identificationModule.nctId"
VERSION_FIELD = "protocolSection.statusModule.lastUpdatePostDateStruct.date"
REQUIRED_FIELDS = ("NCTId", "LastUpdatePostDate")  # added to --fields so every study keeps its id and version

Outcome = Literal["new", "updated", "unchanged"]


class FetchError(CartkgError):
    """The fetch cannot go on (a refused request, retries exhausted); completed pages stay saved."""


class RetryableError(Exception):
    """One attempt failed in a way worth retrying (timeout, 429, 5xx, truncated or invalid page)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PageError(ValueError):
    """A response body that is not a complete API v2 page."""


class StudyError(ValueError):
    """One study object in a page that cannot be saved (no usable NCT id or version date)."""

    def __init__(self, message: str, *, field: str, record: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.record = record


# --------------------------------------------------------------------------- request parameters


@dataclass(frozen=True)
class FetchQuery:
    """What to list: ``query.term``, ``query.intr``, a ``LastUpdatePostDate`` lower bound and ``fields``."""

    term: str | None = DEFAULT_QUERY
    intr: str | None = None
    since: str | None = None
    fields: tuple[str, ...] = ()


def build_params(query: FetchQuery) -> dict[str, str]:
    """The parameters that must be identical on every page of one listing (the API requires it)."""
    params = {"format": "json"}
    if query.term:
        params["query.term"] = query.term
    if query.intr:
        params["query.intr"] = query.intr
    if query.since:
        params["filter.advanced"] = f"AREA[LastUpdatePostDate]RANGE[{query.since},MAX]"
    if query.fields:
        fields = list(query.fields) + [f for f in REQUIRED_FIELDS if f not in query.fields]
        params["fields"] = ",".join(fields)
    return dict(sorted(params.items()))


def page_params(params: Mapping[str, str], page_size: int, page_token: str | None) -> dict[str, str]:
    """Parameters of one page request: the listing's, plus the page size and token (or ``countTotal``)."""
    out = dict(params)
    out["pageSize"] = str(page_size)
    if page_token:
        out["pageToken"] = page_token
    else:
        out["countTotal"] = "true"  # only the first page carries totalCount
    return out


def check_since(value: str) -> str:
    """``YYYY-MM-DD`` or a :class:`UsageError` naming the option."""
    if not SINCE_RE.fullmatch(value):
        raise UsageError(f"--since: {value!r} is not a date YYYY-MM-DD (or 'last')")
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise UsageError(f"--since: {value!r} is not a calendar date ({exc})") from None
    return value


# --------------------------------------------------------------------------- responses and pages


@dataclass(frozen=True)
class Page:
    studies: tuple[Any, ...]
    next_page_token: str | None
    total_count: int | None = None


def parse_page(body: bytes) -> Page:
    """Parse one API v2 page; a truncated, non-JSON or wrongly shaped body raises :class:`PageError`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise PageError(f"the page is not valid JSON ({exc}; {len(body)} bytes received)") from None
    if not isinstance(data, dict):
        raise PageError(f"the page is a JSON {type(data).__name__}, expected an object with 'studies'")
    studies = data.get("studies")
    if not isinstance(studies, list):
        raise PageError("the page has no 'studies' list")
    token = data.get("nextPageToken")
    if token is not None and (not isinstance(token, str) or not token):
        raise PageError(f"the page's 'nextPageToken' is {token!r}, expected a non-empty string")
    total = data.get("totalCount")
    return Page(
        tuple(studies), token, total if isinstance(total, int) and not isinstance(total, bool) else None
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def interpret_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    max_retry_after: float,
    now: datetime | None = None,
) -> Page:
    """Turn one HTTP answer into a :class:`Page`, a :class:`RetryableError` or a :class:`FetchError`."""
    if status == 200:
        try:
            return parse_page(body)
        except PageError as exc:
            raise RetryableError(str(exc)) from None
    snippet = body[:300].decode("utf-8", "replace").strip().replace("\n", " ")
    detail = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    if status in (429, 503):
        wait = parse_retry_after(headers.get("retry-after"), now)
        if wait is not None and wait > max_retry_after:
            raise FetchError(
                f"{detail}; the server asks to wait {wait:.0f} s (more than {max_retry_after:.0f} s). "
                "Completed pages are saved: run the same command later to continue."
            )
        raise RetryableError(detail, retry_after=wait)
    if status == 408 or status >= 500:
        raise RetryableError(detail)
    raise FetchError(
        f"the server refused the request ({detail}); check --query, --since, --fields and --base-url"
    )


# --------------------------------------------------------------------------- studies and versions


def _dig(obj: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def identify_study(study: Any) -> tuple[str, str | None]:
    """``(nct_id, version_date)`` of a study object; :class:`StudyError` names the bad field."""
    if not isinstance(study, dict):
        raise StudyError(f"the study is a JSON {type(study).__name__}, expected an object", field="studies[]")
    nct_id = _dig(study, ID_FIELD)
    if not isinstance(nct_id, str) or not NCT_RE.fullmatch(nct_id):
        raise StudyError(f"{ID_FIELD} is {nct_id!r}, expected NCT followed by 8 digits", field=ID_FIELD)
    version = _dig(study, VERSION_FIELD)
    if version is not None and (not isinstance(version, str) or not DATE_RE.fullmatch(version)):
        raise StudyError(
            f"{VERSION_FIELD} is {version!r}, expected YYYY-MM-DD", field=VERSION_FIELD, record=nct_id
        )
    return nct_id, version


def serialize_study(study: Mapping[str, Any]) -> bytes:
    """The saved form of a study: the API object as received, indented, UTF-8, one trailing newline."""
    return (json.dumps(study, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def saved_version(data: bytes) -> str | None:
    """The version date inside a saved study file (None when absent or unreadable)."""
    try:
        version = _dig(json.loads(data), VERSION_FIELD)
    except (ValueError, RecursionError):
        return None
    return version if isinstance(version, str) else None


def classify_version(saved: bytes | None, new_version: str | None, new_data: bytes) -> Outcome:
    """new / updated / unchanged, by version date; by content when either side has no version date."""
    if saved is None:
        return "new"
    old_version = saved_version(saved)
    if old_version is not None and new_version is not None:
        return "unchanged" if old_version == new_version else "updated"
    return "unchanged" if saved == new_data else "updated"


# --------------------------------------------------------------------------- resume state


@dataclass(frozen=True)
class Counts:
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0

    def add(self, outcome: Outcome | Literal["failed"]) -> Counts:
        bump = {outcome: getattr(self, outcome) + 1}
        return replace(self, fetched=self.fetched + 1, **bump)


@dataclass(frozen=True)
class FetchState:
    """Where a listing stands: written atomically to ``DIR/.fetch-state.json`` after every page."""

    base_url: str
    params: dict[str, str]
    status: Literal["running", "complete"] = "running"
    next_page_token: str | None = None
    pages: int = 0
    counts: Counts = field(default_factory=Counts)
    total_count: int | None = None
    started_at: str = ""
    finished_at: str | None = None
    failures: tuple[str, ...] = ()
    not_listed: tuple[str, ...] | None = None  # set when a complete listing without --since ends
    # outcomes of the page being written, kept so a run killed mid-page still counts those studies right
    pending: dict[str, str] | None = None

    def to_json(self) -> str:
        d = asdict(self)
        d = {"version": STATE_VERSION, **d}
        return json.dumps(d, ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FetchState:
        d = json.loads(text)
        if not isinstance(d, dict) or d.get("version") != STATE_VERSION:
            raise ValueError(f"not a version-{STATE_VERSION} fetch state")
        try:
            return cls(
                base_url=str(d["base_url"]),
                params={str(k): str(v) for k, v in d["params"].items()},
                status="complete" if d["status"] == "complete" else "running",
                next_page_token=d["next_page_token"],
                pages=int(d["pages"]),
                counts=Counts(**{k: int(v) for k, v in d["counts"].items()}),
                total_count=d.get("total_count"),
                started_at=str(d.get("started_at", "")),
                finished_at=d.get("finished_at"),
                failures=tuple(str(f) for f in d.get("failures", [])),
                not_listed=None if d.get("not_listed") is None else tuple(str(n) for n in d["not_listed"]),
                pending=None
                if d.get("pending") is None
                else {str(k): str(v) for k, v in d["pending"].items()},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"missing or malformed entry {exc}") from None


def plan_run(
    previous: FetchState | None, base_url: str, params: dict[str, str], *, restart: bool, now: str
) -> tuple[FetchState, bool]:
    """The state to start from and whether it resumes an unfinished listing of the same request."""
    fresh = FetchState(base_url=base_url, params=params, started_at=now)
    if previous is None or restart or previous.status == "complete":
        return fresh, False
    if previous.base_url == base_url and previous.params == params:
        return previous, True
    raise UsageError(
        f"the output folder holds an unfinished fetch of a different request ({_describe(previous)}); "
        "run that command again to finish it, or pass --restart to start this one"
    )


def resolve_since(value: str | None, previous: FetchState | None, query: FetchQuery) -> str | None:
    """``--since last``: the day the last complete fetch of the same query started (inclusive bound)."""
    if value is None:
        return None
    if value != "last":
        return check_since(value)
    same = replace(query, since=None)
    if (
        previous is None
        or previous.status != "complete"
        or {k: v for k, v in previous.params.items() if k != "filter.advanced"} != build_params(same)
        or not previous.started_at
    ):
        raise UsageError("--since last: the output folder has no completed fetch of this query; give a date")
    return previous.started_at[:10]


def find_not_listed(saved: set[str], listed: set[str]) -> tuple[str, ...]:
    """Saved studies that a complete listing did not return (withdrawn from the query), sorted."""
    return tuple(sorted(saved - listed))


def _describe(state: FetchState) -> str:
    return " ".join(f"{k}={v!r}" for k, v in state.params.items() if k != "format")


# --------------------------------------------------------------------------- I/O edge: pacing and HTTP


class RateLimiter:
    """At most ``rate`` request starts per second (0 = unlimited), counting every attempt."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate < 0:
            raise UsageError(f"--rate must be 0 (unlimited) or positive, got {rate}")
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def wait(self) -> float:
        """Block until the next request may start; returns the seconds slept."""
        now = self._clock()
        delay = 0.0 if self._next is None else max(0.0, self._next - now)
        if delay > 0:
            self._sleep(delay)
        self._next = now + delay + self.interval
        return delay


@dataclass(frozen=True)
class RetryPolicy:
    """Timeouts and retries: ``attempts`` per page, exponential backoff from ``backoff`` seconds."""

    attempts: int = 6
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_retry_after: float = 300.0
    timeout: float = 60.0


def _retry_wait(policy: RetryPolicy) -> Any:
    from tenacity import wait_exponential
    from tenacity.wait import wait_base

    class wait_retry_after(wait_base):
        """The server's ``Retry-After`` when it gave one, else exponential backoff."""

        def __init__(self) -> None:
            self.fallback = wait_exponential(multiplier=policy.backoff, max=policy.max_backoff)

        def __call__(self, retry_state: Any) -> float:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            if isinstance(exc, RetryableError) and exc.retry_after is not None:
                return exc.retry_after
            return float(self.fallback(retry_state))

    return wait_retry_after()


class PageClient:
    """GET one page of ``/studies`` with pacing, timeouts and retries; returns a parsed :class:`Page`."""

    def __init__(
        self,
        base_url: str,
        *,
        rate: float = 1.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        report: Callable[[str], None] | None = None,
    ) -> None:
        import httpx

        self.url = base_url.rstrip("/") + STUDIES_ENDPOINT
        self.policy = policy or RetryPolicy()
        if self.policy.attempts < 1:
            raise UsageError(f"--retries must be 0 or more, got {self.policy.attempts - 1}")
        self.limiter = RateLimiter(rate, clock=clock, sleep=sleep)
        self.requests = 0
        self._sleep = sleep
        self._report = report or (lambda message: None)
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.policy.timeout),
            headers={"User-Agent": f"cartkg/{__version__} (cartkg fetch)", "Accept": "application/json"},
            follow_redirects=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PageClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_page(self, params: Mapping[str, str], label: str) -> Page:
        """One page, retried per the policy; :class:`FetchError` when it cannot be had."""
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

        def before_sleep(state: Any) -> None:
            exc = state.outcome.exception()
            wait = state.next_action.sleep if state.next_action else 0.0
            self._report(
                f"{label}: {exc}; retrying in {wait:.1f} s (attempt {state.attempt_number + 1} "
                f"of {self.policy.attempts})"
            )

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts),
            wait=_retry_wait(self.policy),
            retry=retry_if_exception_type(RetryableError),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._request_page, params)
        except RetryableError as exc:
            raise FetchError(
                f"{label}: gave up after {self.policy.attempts} attempts; last problem: {exc}. "
                "Completed pages are saved: run the same command again to continue."
            ) from None

    def _request_page(self, params: Mapping[str, str]) -> Page:
        import httpx

        self.limiter.wait()
        self.requests += 1
        try:
            response = self._http.get(self.url, params=dict(params))
        except httpx.TimeoutException as exc:
            raise RetryableError(
                f"no answer within {self.policy.timeout:g} s ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:  # refused connection, truncated body (RemoteProtocolError), …
            raise RetryableError(f"{type(exc).__name__}: {exc}") from None
        return interpret_response(
            response.status_code,
            response.headers,
            response.content,
            max_retry_after=self.policy.max_retry_after,
        )


# --------------------------------------------------------------------------- I/O edge: files


@functools.cache
def _file_mode() -> int:
    """0o666 less the process umask: what ``open()`` would give a new file (mkstemp gives 0o600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader (or a killed writer) sees the old file or the new one, whole."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:
            exc.filename = str(path)
        raise


def append_seen(out: Path, nct_ids: list[str]) -> None:
    """Record the ids one page listed (appended and synced before the state moves past that page)."""
    with open(out / SEEN_NAME, "a", encoding="utf-8") as fh:
        fh.write("".join(f"{n}\n" for n in nct_ids))
        fh.flush()
        os.fsync(fh.fileno())


def read_seen(out: Path) -> set[str]:
    try:
        return set((out / SEEN_NAME).read_text(encoding="utf-8").split())
    except FileNotFoundError:
        return set()


def saved_ids(studies_dir: Path) -> set[str]:
    return {p.stem for p in studies_dir.glob("NCT*.json") if NCT_RE.fullmatch(p.stem)}


def remove_leftovers(folder: Path) -> int:
    """Delete temporary files a killed fetch left behind; returns how many."""
    n = 0
    for tmp in sorted(folder.glob(f".*{TEMP_SUFFIX}")):
        with contextlib.suppress(OSError):
            tmp.unlink()
            n += 1
    return n


def load_state(out: Path) -> FetchState | None:
    path = out / STATE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return FetchState.from_json(text)
    except ValueError as exc:
        raise UsageError(
            f"{path}: unreadable fetch state ({exc}); pass --restart to start a new fetch"
        ) from None


@contextlib.contextmanager
def lock_folder(out: Path) -> Iterator[None]:
    """Refuse a second fetch writing into the same folder at the same time (POSIX; a no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(out / LOCK_NAME, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"{out}: another cartkg fetch is writing into this folder") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class PlannedStudy:
    nct_id: str
    data: bytes
    outcome: Outcome


def plan_study(studies_dir: Path, study: Mapping[str, Any], nct_id: str, version: str | None) -> PlannedStudy:
    """What saving one study would do: new, updated, or unchanged (then it is not written)."""
    try:
        saved = (studies_dir / f"{nct_id}.json").read_bytes()
    except FileNotFoundError:
        saved = None
    if saved is not None and version is not None and saved_version(saved) == version:
        return PlannedStudy(nct_id, b"", "unchanged")  # the common case of a re-run: nothing to serialize
    data = serialize_study(study)
    return PlannedStudy(nct_id, data, classify_version(saved, version, data))


# --------------------------------------------------------------------------- the fetch


@dataclass(frozen=True)
class FetchOptions:
    out: Path
    query: FetchQuery = FetchQuery()
    since: str | None = None  # a date, or "last"; resolved into query.since by run_fetch
    base_url: str = DEFAULT_BASE_URL
    page_size: int = DEFAULT_PAGE_SIZE
    rate: float = 1.0
    max_pages: int | None = None
    restart: bool = False
    policy: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class FetchSummary:
    out: str
    complete: bool
    resumed: bool
    pages: int
    counts: Counts
    total_count: int | None
    requests: int
    failures: tuple[str, ...] = ()
    not_listed: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failures"] = list(self.failures)
        d["not_listed"] = None if self.not_listed is None else list(self.not_listed)
        return d

    def describe(self) -> str:
        c = self.counts
        head = "fetch complete" if self.complete else "fetch stopped early (run the same command to continue)"
        total = f" of {self.total_count}" if self.total_count is not None else ""
        return (
            f"{head}: {c.fetched}{total} studies fetched in {self.pages} pages "
            f"({c.new} new, {c.updated} updated, {c.unchanged} unchanged, {c.failed} failed)"
            f"{' after resuming' if self.resumed else ''} -> {self.out}"
            + (
                f"; {len(self.not_listed)} saved studies are no longer listed: {' '.join(self.not_listed)}"
                if self.not_listed
                else ""
            )
        )


def _as_outcome(value: str) -> Outcome:
    return "new" if value == "new" else "updated" if value == "updated" else "unchanged"


def _stderr(message: str) -> None:
    print(f"cartkg: fetch: {message}", file=sys.stderr, flush=True)


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_options(options: FetchOptions) -> None:
    if not 1 <= options.page_size <= MAX_PAGE_SIZE:
        raise UsageError(f"--page-size must be between 1 and {MAX_PAGE_SIZE}, got {options.page_size}")
    if options.max_pages is not None and options.max_pages < 1:
        raise UsageError(f"--max-pages must be 1 or more, got {options.max_pages}")
    if options.policy.timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {options.policy.timeout}")
    if options.policy.backoff < 0:
        raise UsageError(f"--backoff must be 0 or more, got {options.policy.backoff}")
    if not options.base_url.startswith(("http://", "https://")):
        raise UsageError(f"--base-url must be an http(s) URL, got {options.base_url!r}")


def run_fetch(
    options: FetchOptions,
    *,
    report: Callable[[str], None] = _stderr,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> FetchSummary:
    """Fetch (or resume fetching) every page of the listing into ``options.out``; see the module doc."""
    check_options(options)
    out = options.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    studies_dir = out / STUDIES_DIR
    try:
        studies_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None
    with lock_folder(out):
        remove_leftovers(out)
        remove_leftovers(studies_dir)
        try:
            previous = load_state(out)
        except UsageError:
            if not options.restart:
                raise
            previous = None
        since = resolve_since(options.since, previous, options.query)
        params = build_params(replace(options.query, since=since))
        state, resumed = plan_run(previous, options.base_url, params, restart=options.restart, now=_utc_now())
        if resumed:
            report(f"resuming after page {state.pages} ({state.counts.fetched} studies already fetched)")
        else:
            write_atomic(out / SEEN_NAME, b"")
        with PageClient(
            options.base_url,
            rate=options.rate,
            policy=options.policy,
            sleep=sleep,
            clock=clock,
            report=report,
        ) as client:
            try:
                state = _fetch_pages(client, state, options, studies_dir, report)
            except KeyboardInterrupt:
                raise FetchError(
                    "interrupted; completed pages are saved: run the same command to continue"
                ) from None
            except OSError as exc:  # disk full, permissions: the state still points at the unfinished page
                name = f" {exc.filename}" if exc.filename else ""
                raise FetchError(
                    f"cannot write{name} ({exc.strerror or exc}); completed pages are saved: "
                    "fix the cause and run the same command to continue"
                ) from None
            requests = client.requests
    return FetchSummary(
        out=str(studies_dir),
        complete=state.status == "complete",
        resumed=resumed,
        pages=state.pages,
        counts=state.counts,
        total_count=state.total_count,
        requests=requests,
        failures=state.failures,
        not_listed=state.not_listed,
    )


def _fetch_pages(
    client: PageClient,
    state: FetchState,
    options: FetchOptions,
    studies_dir: Path,
    report: Callable[[str], None],
) -> FetchState:
    seen_tokens: set[str] = set()
    pages_this_run = 0
    while state.status == "running":
        if options.max_pages is not None and pages_this_run >= options.max_pages:
            report(f"stopped after {pages_this_run} pages (--max-pages); run the same command to continue")
            break
        token = state.next_page_token
        label = f"page {state.pages + 1}" + (f" (pageToken {token})" if token else "")
        page = client.get_page(page_params(state.params, options.page_size, token), label)
        counts = state.counts
        failures = list(state.failures)
        planned: list[PlannedStudy] = []
        for index, study in enumerate(page.studies):
            try:
                nct_id, version = identify_study(study)
            except StudyError as exc:
                message = (
                    f"{label}, studies[{index}]" + (f" ({exc.record})" if exc.record else "") + f": {exc}"
                )
                failures.append(message)
                report(f"skipped {message}")
                counts = counts.add("failed")
                continue
            planned.append(plan_study(studies_dir, study, nct_id, version))
        # A killed run may have written part of this page: it then reads as unchanged, so count each study
        # as the first attempt at this page classified it.
        pending = state.pending or {}
        writes = {p.nct_id: p.outcome for p in planned if p.outcome != "unchanged"}
        if writes.keys() - pending.keys():
            state = replace(state, pending={**writes, **pending})
            write_atomic(studies_dir.parent / STATE_NAME, state.to_json().encode("utf-8"))
        for p in planned:
            if p.outcome != "unchanged":
                write_atomic(studies_dir / f"{p.nct_id}.json", p.data)
            counts = counts.add(_as_outcome(pending.get(p.nct_id, p.outcome)))
        listed = [p.nct_id for p in planned]
        next_token = page.next_page_token
        if next_token is not None and (next_token == token or next_token in seen_tokens):
            raise FetchError(
                f"{label}: the server sent a nextPageToken already used ({next_token}); stopping"
            )
        if token:
            seen_tokens.add(token)
        append_seen(studies_dir.parent, listed)
        not_listed = None
        if next_token is None and "filter.advanced" not in state.params:
            not_listed = find_not_listed(saved_ids(studies_dir), read_seen(studies_dir.parent))
            if not_listed:
                report(f"{len(not_listed)} saved studies are no longer listed: {' '.join(not_listed)}")
        state = replace(
            state,
            next_page_token=next_token,
            pages=state.pages + 1,
            counts=counts,
            failures=tuple(failures),
            total_count=page.total_count if state.pages == 0 else state.total_count,
            status="running" if next_token else "complete",
            finished_at=None if next_token else _utc_now(),
            not_listed=not_listed,
            pending=None,
        )
        write_atomic(studies_dir.parent / STATE_NAME, state.to_json().encode("utf-8"))
        pages_this_run += 1
        c = state.counts
        report(
            f"page {state.pages}: {len(page.studies)} studies; {c.fetched} so far "
            f"({c.new} new, {c.updated} updated, {c.unchanged} unchanged, {c.failed} failed)"
        )
    return state
