"""Cut service models on disk: where they are cached, how they are rebuilt, and the loader that
hands them to botocore (the cutting itself is pure: `ohf.service_models`).

Cache: one JSON file per service, `<dir>/botocore-<version>/<service>-<digest>.json`, in the
first of these directories that holds a good one or can be written:
`$OHF_CACHE_DIR/models`, `$XDG_CACHE_HOME/ohf/models` (else `~/.cache/ohf/models`), then
`.ohf-cache/models` beside the state file. The botocore version and the digest of the operations
kept are in the path, so an upgrade of either makes a new file and never reads an old one.
A missing, unreadable or corrupt file is rebuilt from botocore's own model and written
atomically (a temp file in the same directory, then renamed over), so any number of processes
building at once each read whole files, and the last rename leaves the same content.

Falling back: when no cut can be had (botocore's model lacks an operation ohf needs, or
`AWS_DATA_PATH` or `~/.aws/models` replaces botocore's models), clients are built on botocore's
full model, as before, and one log line per process says why.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import botocore
import msgspec
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader
from returns.result import Failure, Result, Success

from ohf.effects.files import write_bytes
from ohf.service_models import (
    ENDPOINTS,
    OPERATIONS,
    PARTS,
    SERVICE,
    check_document,
    check_endpoints,
    cut_document,
    cut_endpoints,
    digest,
    endpoint_services,
    unusable_document,
    unusable_reason,
)

log = logging.getLogger("ohf.aws")  # the package's logger name: log settings keep working

# A document hands botocore one of these; others (examples-1, ...) come from botocore itself.
_CUT_TYPES = frozenset(PARTS)


def cache_dirs(env: Mapping[str, str], state_path: str | None = None) -> tuple[str, ...]:
    """Where cut models are looked for and written, in order (see the module docstring)."""
    dirs: list[str] = []
    if env.get("OHF_CACHE_DIR"):
        dirs.append(os.path.join(env["OHF_CACHE_DIR"], "models"))
    xdg = env.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        dirs.append(os.path.join(xdg, "ohf", "models"))
    elif home := env.get("HOME") or os.path.expanduser("~"):
        dirs.append(os.path.join(home, ".cache", "ohf", "models"))
    if state_path:
        dirs.append(
            os.path.join(os.path.dirname(os.path.abspath(state_path)), ".ohf-cache", "models")
        )
    return tuple(dirs)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


class _Unusable(Exception):
    """A cached record that botocore's model cannot be cut (the reason is the message)."""


def _cached(raw: bytes, service: str) -> Result[dict[str, Any], str]:
    """A cached document checked, or why it must be rebuilt; `_Unusable` if it records that no
    cut can be made of this botocore's model."""
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        return Failure(f"not JSON: {exc}")
    why = unusable_reason(document, service, botocore.__version__)
    if why is not None:
        raise _Unusable(why)
    if service == ENDPOINTS:
        return check_endpoints(document, botocore.__version__)
    return check_document(document, service, botocore.__version__)


_BUILDER: list[Loader] = []


def _full_loader() -> Loader:
    """botocore's loader with its default search paths (as a session without AWS_DATA_PATH),
    one per process: building the endpoints' cut and a service's reads the same model once."""
    if not _BUILDER:
        _BUILDER.append(Loader())
    return _BUILDER[0]


def full_parts(service: str) -> tuple[str, dict[str, Any]]:
    """botocore's own model files of `service` (latest API version): (version, {part: doc})."""
    loader = _full_loader()
    api_version = loader.determine_latest_version(service, SERVICE)
    parts: dict[str, Any] = {}
    for part in PARTS:
        try:
            parts[part] = loader.load_service_model(service, part, api_version)
        except DataNotFoundError:
            parts[part] = None
    return api_version, parts


def full_endpoints() -> tuple[dict[str, Any], list[str]]:
    """botocore's own endpoints.json, and the endpoint prefixes of the services an ohf session
    makes clients of (those this botocore knows)."""
    loader = _full_loader()
    known = set(loader.list_available_services(SERVICE))
    prefixes = [
        loader.load_service_model(s, SERVICE)["metadata"]["endpointPrefix"]
        for s in endpoint_services()
        if s in known
    ]
    return loader.load_data("endpoints"), prefixes


class CutModels:
    """One process's cut models: each service's document, read (or built) once, or None."""

    def __init__(self, dirs: Sequence[str]) -> None:
        self.dirs = tuple(dirs)
        self._documents: dict[str, dict[str, Any] | None] = {}
        self._lock = threading.Lock()

    def document(self, service: str) -> dict[str, Any] | None:
        """The cut document of `service` (or of the endpoints: `ENDPOINTS`), or None: build its
        clients on the full model."""
        if service not in OPERATIONS and service != ENDPOINTS:
            return None
        with self._lock:
            if service not in self._documents:
                self._documents[service] = self._load(service)
            return self._documents[service]

    def _path(self, directory: str, service: str) -> str:
        version = f"botocore-{botocore.__version__}"
        return os.path.join(directory, version, f"{service}-{digest(service)}.json")

    def _load(self, service: str) -> dict[str, Any] | None:
        # Models of the user's own in ~/.aws/models win over botocore's: never cut those.
        own = service if service != ENDPOINTS else f"{ENDPOINTS}.json"
        if os.path.exists(os.path.join(Loader.CUSTOMER_DATA_PATH, own)):
            log.info("aws models: %s is replaced in ~/.aws/models; full model", service)
            return None
        for directory in self.dirs:
            raw = _read(self._path(directory, service))
            if raw is None:
                continue
            try:
                cached = _cached(raw, service)
            except _Unusable as exc:
                log.warning("aws models: %s; using botocore's full %s model", exc, service)
                return None
            if isinstance(cached, Success):
                document: dict[str, Any] = cached.unwrap()
                return document
            log.info(
                "aws models: rebuilding %s: %s", self._path(directory, service), cached.failure()
            )
        return self._build(service)

    def _build(self, service: str) -> dict[str, Any] | None:
        try:
            if service == ENDPOINTS:
                built = cut_endpoints(botocore.__version__, *full_endpoints())
            else:
                api_version, parts = full_parts(service)
                built = cut_document(service, botocore.__version__, api_version, parts)
        except Exception as exc:  # anything off about botocore's files: the full model decides
            built = Failure(f"cannot cut {service}'s model: {type(exc).__name__}: {exc}")
        document = built.value_or(None)
        body = msgspec.json.encode(
            document
            if document is not None
            else unusable_document(service, botocore.__version__, built.failure())
        )
        written = [d for d in self.dirs if self._write(d, service, body)][:1]
        if document is None:
            log.warning("aws models: %s; using botocore's full %s model", built.failure(), service)
        elif not written:
            log.warning(
                "aws models: cannot write the cut %s model in %s; each process cuts it anew",
                service,
                ", ".join(self.dirs) or "no cache directory",
            )
        return document

    def _write(self, directory: str, service: str, body: bytes) -> bool:
        path = self._path(directory, service)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError:
            return False
        return isinstance(write_bytes(path, body, what="cut model"), Success)


_PROCESS: dict[tuple[str, ...], CutModels] = {}
_PROCESS_LOCK = threading.Lock()


def cut_models(dirs: Sequence[str]) -> CutModels:
    """This process's cut models for these cache directories (read once, shared by sessions)."""
    key = tuple(dirs)
    with _PROCESS_LOCK:
        if key not in _PROCESS:
            _PROCESS[key] = CutModels(key)
        return _PROCESS[key]


class CutLoader(Loader):  # type: ignore[misc]
    """botocore's loader, answering the model files of a cut service from its document."""

    def __init__(self, models: CutModels) -> None:
        super().__init__()
        self._models = models

    def load_data_with_path(self, name: str) -> Any:
        """The cut endpoints (from where botocore's own lie, so they count as its built-in
        data), else botocore's own file."""
        if name == ENDPOINTS:
            document = self._models.document(ENDPOINTS)
            if document is not None:
                return document[ENDPOINTS], os.path.join(self.BUILTIN_DATA_PATH, ENDPOINTS)
        return super().load_data_with_path(name)

    def load_service_model(
        self, service_name: str, type_name: str, api_version: str | None = None
    ) -> Any:
        """The cut file for a service ohf cuts, else botocore's own."""
        document = self._models.document(service_name) if type_name in _CUT_TYPES else None
        if document is None or api_version not in (None, document["api_version"]):
            return super().load_service_model(service_name, type_name, api_version)
        part = document[type_name]
        if part is None:  # the service has no such file (STS has no waiters)
            raise DataNotFoundError(
                data_path=f"{service_name}/{document['api_version']}/{type_name}"
            )
        return part


def install(session: Any, models: CutModels) -> None:
    """Make `session` (a fresh botocore session) load ohf's services from cut models, unless
    its models are replaced (`AWS_DATA_PATH` or a profile's `data_path`): then botocore's own
    loader. Decided when botocore first asks for its loader, as botocore itself decides (so a
    profile the files lack is reported by the call that needs it, as before)."""
    from botocore.loaders import create_loader

    def loader() -> Loader:
        data_path = session.get_config_variable("data_path")
        return create_loader(data_path) if data_path else CutLoader(models)

    # The registration botocore's Session makes for its own loader, with ours in its place.
    session._components.lazy_register_component("data_loader", loader)


def lacking_operations_from(client: Any, full_client: Callable[[], Any]) -> None:
    """Let `client` (on a cut model) answer a method its model lacks with `full_client()`'s,
    built once on botocore's full model, saying so once per method: a cut that misses an
    operation ohf calls costs a second client, never the call."""
    made: list[Any] = []
    said: set[str] = set()
    service_id = client.meta.service_model.service_id.hyphenize()

    def lookup(event_name: str, **_: Any) -> Any:
        item = event_name.rsplit(".", 1)[-1]
        if item.startswith("_") or not item.islower():
            return None  # a probe for a dunder or private name: the cut is not at fault
        if not made:
            made.append(full_client())
        method = getattr(made[0], item, None)
        if method is not None and item not in said:
            said.add(item)
            log.warning(
                "aws models: the cut %s model has no %s; calling it on the full model",
                service_id,
                item,
            )
        return method

    client.meta.events.register(f"getattr.{service_id}", lookup)
