"""Developer sessions: tests, tests_oldest, lint (ruff), typecheck (mypy), schemas (regenerate
JSON Schemas), and the long runs CI does not make: bench (ohf vs ORB) and soak (a simulated
year)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
SOURCES = ["ohf", "tests", "scripts", "noxfile.py", "benchmarks"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: unit, property, stateful and end-to-end (moto_server) tests."""
    session.install("-e", ".[test,api,mcp]")
    session.run("python", "-m", "pytest", "-n", "2", *session.posargs)


@nox.session
def tests_oldest(session: nox.Session) -> None:
    """The suite on the lowest version of every dependency pyproject.toml allows.

    Under `constraints/oldest.txt`, which `scripts/oldest_constraints.py` writes from the lower
    bounds (`tests/test_constraints.py` keeps the two in step). Dependencies of those pass freely.
    """
    session.install("-c", "constraints/oldest.txt", "-e", ".[test,api,mcp]")
    session.run("python", "-m", "pytest", "-n", "2", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.13")
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[test,api,mcp]")
    session.run("mypy")


@nox.session
def schemas(session: nox.Session) -> None:
    """Regenerate `schemas/` from the structs (commit the result)."""
    session.install("-e", ".")
    session.run("python", "scripts/generate_schemas.py")


BENCH_ORB = "orb-py==1.8.5"  # the Open Resource Broker release the benchmark compares against
BENCH_MOTO = "moto[server,ec2,ssm]==5.2.5"  # moto_bench.py patches this version's RunInstances


def _side_venv(session: nox.Session, name: str, *requirements: str) -> str:
    """A virtualenv beside this session's, with `requirements` installed; its bin directory."""
    import pathlib

    location = pathlib.Path(session.virtualenv.location).parent / name
    if not (location / "bin" / "python").exists():
        session.run("python", "-m", "venv", str(location))
    python = str(location / "bin" / "python")
    session.run(python, "-m", "pip", "install", "--quiet", *requirements, external=True)
    return str(location / "bin")


@nox.session
def bench(session: nox.Session) -> None:
    """ohf vs Open Resource Broker on moto_server: writes benchmarks/RESULTS.md (not run by CI).

    `nox -s bench -- --quick` (or BENCH_QUICK=1) for a smoke run with fewer runs and machines.
    """
    session.install(BENCH_MOTO)
    ohf_bin = _side_venv(session, "bench-ohf", ".")  # pip reinstalls a local tree every time
    args = ["--ohf-python", f"{ohf_bin}/python"]
    try:
        orb_bin = _side_venv(session, "bench-orb", BENCH_ORB)
        args += ["--orb", f"{orb_bin}/orb"]
    except nox.command.CommandFailed as exc:
        args += ["--orb-install-error", f"pip install {BENCH_ORB} failed: {exc.reason}"]
    session.run("python", "benchmarks/run.py", *args, *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """A simulated year of HF at a busy site on the fake cloud: writes benchmarks/SOAK.md.

    `nox -s soak -- --days 30` for a month; CI runs two weeks at shrunk thresholds
    (tests/test_soak.py).
    """
    session.install("-e", ".[test]")
    session.run("python", "benchmarks/soak.py", *session.posargs)
