"""Filesystem effects: find and read the config, templates, catalogue and HF input files.

The decoding is pure (`ohf.config`, `ohf.catalogue`); this module only decides which file to
read and reads it, turning every OS error into a `Failure` that names the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import msgspec
from returns.result import Failure, Result, Success

from ohf.catalogue import Catalogue, decode_catalogue
from ohf.config import (
    Config,
    conf_dirs,
    config_candidates,
    decode_config,
    decode_template_file,
    ibm_file_names,
    merge_templates,
)
from ohf.ibm import decode_ibm_config
from ohf.model import OhfError
from ohf.placement import check_providers

STATE_FILE = "ohf-state.json"
SQLITE_FILE = "ohf-state.sqlite"
LOG_FILE = "ohf.log"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded config plus where it came from and the paths it resolves to."""

    config: Config
    source: str
    conf_dir: str
    state_path: str
    log_path: str | None


def read_bytes(path: str | Path, *, what: str) -> Result[bytes, OhfError]:
    """The bytes of a file, or a Failure naming it."""
    try:
        return Success(Path(path).read_bytes())
    except FileNotFoundError:
        return Failure(OhfError(message=f"{what} {path} does not exist", code="input"))
    except OSError as exc:
        return Failure(OhfError(message=f"cannot read {what} {path}: {exc}", code="input"))


def write_bytes(path: str | Path, data: bytes, *, what: str) -> Result[None, OhfError]:
    """Write a whole file atomically (a temp file beside it, then renamed over it): a reader
    never sees half of it, and a failure leaves what was there."""
    import os
    import tempfile

    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        return Failure(OhfError(message=f"cannot write {what} {path}: {exc}", code="output"))
    return Success(None)


def read_text(path: str | Path, *, what: str = "file") -> Result[str, OhfError]:
    """The UTF-8 text of a file, or a Failure naming it."""
    return read_bytes(path, what=what).bind(lambda raw: _utf8(raw, f"{what} {path}"))


def readable_texts(paths: Iterable[str]) -> dict[str, str]:
    """The UTF-8 text of each file that can be read, by path; the others are left out."""
    texts = ((path, read_text(path)) for path in paths)
    return {path: text.unwrap() for path, text in texts if isinstance(text, Success)}


def _utf8(raw: bytes, where: str) -> Result[str, OhfError]:
    try:
        return Success(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return Failure(OhfError(message=f"{where} is not UTF-8: {exc}", code="input"))


# The package's data directory. Read as a plain file: importlib.resources costs more to import
# (zipfile, tempfile, ...) than a whole getAvailableTemplates call has to spare.
_DATA = Path(__file__).resolve().parent.parent / "data"


def read_catalogue() -> Catalogue:
    """The instance-type catalogue bundled with the package."""
    try:
        raw = (_DATA / "instance_types.json").read_bytes()
    except OSError:  # installed somewhere that is not a directory (a zip): ask importlib
        from importlib import resources

        raw = resources.files("ohf").joinpath("data/instance_types.json").read_bytes()
    return decode_catalogue(raw)


def _resolve(base: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else base / path


def _find_ibm(dirs: list[str], env: Mapping[str, str]) -> tuple[Path, Path | None] | None:
    for d in dirs:
        for name in ibm_file_names("templates", env):
            templates = Path(d) / name
            if templates.is_file():
                config = next(
                    (Path(d) / n for n in ibm_file_names("config", env) if (Path(d) / n).is_file()),
                    None,
                )
                return templates, config
    return None


def load_settings(
    explicit: str | None, env: Mapping[str, str], cwd: str
) -> Result[Settings, OhfError]:
    """Find, read and decode the config: ohf.toml first, else an IBM conf dir."""
    for candidate in config_candidates(explicit, env, cwd):
        path = Path(cwd, candidate).absolute()
        if explicit or env.get("OHF_CONFIG") or path.is_file():
            return _load_ohf(path, env)
    ibm = _find_ibm(conf_dirs(env, cwd), env)
    if ibm is None:
        looked = ", ".join(config_candidates(None, env, cwd))
        return Failure(
            OhfError(
                message=(
                    f"no config found: looked for {looked} and for awsprov_templates.json in "
                    "$HF_PROVIDER_CONFDIR/$PRO_CONF_DIR/cwd; pass --config or set OHF_CONFIG"
                ),
                code="config",
            )
        )
    return _load_ibm(*ibm, env)


def _load_ohf(path: Path, env: Mapping[str, str]) -> Result[Settings, OhfError]:
    fmt: Literal["toml", "json"] = "json" if path.suffix.lower() == ".json" else "toml"
    decoded = read_bytes(path, what="config file").bind(
        lambda raw: decode_config(raw, fmt=fmt, source=str(path))
    )
    if isinstance(decoded, Failure):
        return decoded
    config = decoded.unwrap()
    base = path.parent
    if config.templates_file:
        tpath = _resolve(base, config.templates_file)
        merged = (
            read_bytes(tpath, what="templates file")
            .bind(lambda raw: decode_template_file(raw, source=str(tpath)))
            .bind(lambda ts: merge_templates(config, ts, source=str(tpath)))
        )
        if isinstance(merged, Failure):
            return merged
        config = merged.unwrap()
    return _checked(config, path).map(lambda ok: _settings(ok, str(path), base, env))


def _load_ibm(
    templates: Path, provider: Path | None, env: Mapping[str, str]
) -> Result[Settings, OhfError]:
    base = templates.parent
    config_result: Result[Config, OhfError] = (
        Success(Config())
        if provider is None
        else read_bytes(provider, what="provider config").bind(
            lambda raw: decode_ibm_config(raw, source=str(provider))
        )
    )
    loaded = config_result.bind(
        lambda config: (
            read_bytes(templates, what="templates file")
            .bind(lambda raw: decode_template_file(raw, source=str(templates)))
            .bind(lambda ts: merge_templates(config, ts, source=str(templates)))
            .bind(lambda merged: _checked(merged, templates))
        )
    )
    return loaded.map(lambda config: _settings(config, str(provider or templates), base, env))


def _checked(config: Config, source: Path) -> Result[Config, OhfError]:
    """`check_providers`, with the file named in its message."""
    checked = check_providers(config)
    if isinstance(checked, Failure):
        error = checked.failure()
        return Failure(msgspec.structs.replace(error, message=f"{source}: {error.message}"))
    return checked


def _settings(config: Config, source: str, base: Path, env: Mapping[str, str]) -> Settings:
    work = env.get("HF_PROVIDER_WORKDIR")
    state_path = (
        _resolve(base, config.storage.path)
        if config.storage.path
        else Path(work or base) / (SQLITE_FILE if config.storage.type == "sqlite" else STATE_FILE)
    )
    log_dir = env.get("HF_PROVIDER_LOGDIR") or env.get("HF_LOGDIR") or env.get("PRO_LSF_LOGDIR")
    log_path = (
        _resolve(base, config.logging.file)
        if config.logging.file
        else Path(log_dir or work or base) / LOG_FILE
    )
    return Settings(
        config=config,
        source=source,
        conf_dir=str(base),
        state_path=str(state_path),
        log_path=str(log_path),
    )
