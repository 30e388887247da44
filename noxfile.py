"""Developer sessions: tests, lint (ruff), typecheck (mypy), schemas (regenerate JSON Schemas)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
SOURCES = ["ohf", "tests", "scripts", "noxfile.py"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: unit, property, stateful and end-to-end (moto_server) tests."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-n", "2", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[test]")
    session.run("mypy")


@nox.session
def schemas(session: nox.Session) -> None:
    """Regenerate `schemas/` from the structs (commit the result)."""
    session.install("-e", ".")
    session.run("python", "scripts/generate_schemas.py")
