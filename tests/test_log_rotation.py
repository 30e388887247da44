"""The log file stays bounded: `[logging] max_bytes` and `backups`, safe with many processes.

16 processes log at the same moment (HF runs its calls concurrently) into a log small enough
to rotate dozens of times meanwhile: every line is found exactly once, whole, in `ohf.log` or
one of its backups. With few backups the files stay bounded; `max_bytes = 0` never rotates;
and an HF call run by the CLI rotates by its config.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ohf.effects.logfile import SharedFileHandler
from tests.conftest import run_ohf

PROCESSES = 16
LINES = 150
# Each process writes lines from 100 bytes to ~9 KB: longer than a pipe's atomic write and
# than stdio's buffer, so a line split across writes would show.
CHILD = """
import sys, time
from ohf.effects import logs
path, who, start, max_bytes, backups, lines = sys.argv[1:7]
log = logs.setup(path, "INFO", "test", f"p{who}", max_bytes=int(max_bytes), backups=int(backups))
while time.time() < float(start):
    time.sleep(0.001)
for n in range(int(lines)):
    log.info("line %s %s %s", who, n, "x" * ((int(who) * 997 + n * 131) % 9000))
"""


def _run_writers(log: Path, max_bytes: int, backups: int) -> None:
    start = time.time() + 1.5  # every process imported and waiting: they start together
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(log),
                str(n),
                str(start),
                str(max_bytes),
                str(backups),
                str(LINES),
            ]
        )
        for n in range(PROCESSES)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0


def _files(log: Path) -> list[Path]:
    return sorted(log.parent.glob(log.name + "*"), key=lambda p: p.name)


def _lines(log: Path) -> list[tuple[str, int]]:
    """(process, line number) of every line of the log and its backups; each must be whole."""
    found: list[tuple[str, int]] = []
    for path in _files(log):
        if path.name.endswith(".lock"):
            continue
        data = path.read_bytes()
        assert data.endswith(b"\n") or not data, f"{path.name} ends in a partial line"
        for raw in data.split(b"\n")[:-1]:
            entry = json.loads(raw)  # a split or interleaved line would not parse
            _, who, number, padding = entry["event"].split(" ")
            assert entry["cid"] == f"p{who}"
            assert len(padding) == (int(who) * 997 + int(number) * 131) % 9000
            found.append((who, int(number)))
    return found


def test_16_processes_logging_at_once_lose_and_split_no_line(tmp_path: Path) -> None:
    log = tmp_path / "ohf.log"
    _run_writers(log, max_bytes=64 * 1024, backups=1000)
    found = _lines(log)
    counts = Counter(found)
    expected = {(str(w), n) for w in range(PROCESSES) for n in range(LINES)}
    assert set(counts) == expected, f"{len(expected - set(counts))} line(s) lost"
    assert max(counts.values()) == 1, "a line was written twice"
    backups = [p for p in _files(log) if p.name[len("ohf.log.") :].isdigit()]
    assert len(backups) > 20, "the test should rotate many times while the processes write"
    # Every file was rotated soon after it passed the size: bounded by it and one round of
    # lines the other processes were writing meanwhile.
    assert max(p.stat().st_size for p in backups) < 64 * 1024 + PROCESSES * 10_000


def test_with_few_backups_the_files_stay_bounded_and_whole(tmp_path: Path) -> None:
    log = tmp_path / "ohf.log"
    _run_writers(log, max_bytes=32 * 1024, backups=2)
    names = sorted(p.name for p in _files(log))
    # A writer rotates after the line that took the file past the size: the last one may have
    # left no ohf.log behind (the next call creates it).
    assert names in (
        ["ohf.log", "ohf.log.1", "ohf.log.2", "ohf.log.lock"],
        ["ohf.log.1", "ohf.log.2", "ohf.log.lock"],
    )
    assert all(p.stat().st_size < 32 * 1024 + PROCESSES * 10_000 for p in _files(log))
    # Older lines went with the oldest backups, the newest are kept, each line whole. A file
    # holds lines in the order they were written, and only the oldest files are dropped, so
    # what is left of each writer is the end of what it wrote (or nothing, for a writer that
    # finished rotations ago); the run's very last line is in the newest file.
    kept: dict[str, list[int]] = {}
    for who, number in _lines(log):
        kept.setdefault(who, []).append(number)
    assert sum(map(len, kept.values())) < PROCESSES * LINES, "nothing was dropped"
    for who, numbers in kept.items():
        assert sorted(numbers) == list(range(LINES - len(numbers), LINES)), f"writer {who}"
    newest_file = log if log.exists() else log.with_name("ohf.log.1")
    newest = newest_file.read_bytes().split(b"\n")[:-1]
    assert any(json.loads(raw)["event"].split(" ")[2] == str(LINES - 1) for raw in newest)


def test_max_bytes_0_never_rotates(tmp_path: Path) -> None:
    log = tmp_path / "ohf.log"
    handler = SharedFileHandler(log, max_bytes=0, backups=5)
    for _ in range(1000):
        handler.write(b"x" * 99 + b"\n")
    handler.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ohf.log"]
    assert log.stat().st_size == 100_000


def test_a_process_that_kept_the_old_file_open_writes_to_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "ohf.log"
    slow = SharedFileHandler(log, max_bytes=1000, backups=3)
    fast = SharedFileHandler(log, max_bytes=1000, backups=3)
    slow.write(b"slow 1\n")
    for n in range(30):
        fast.write(f"fast {n:02d} ".encode() + b"x" * 80 + b"\n")
    slow.write(b"slow 2\n")  # the file it opened is a backup by now
    for handler in (slow, fast):
        handler.close()
    assert log.read_bytes().endswith(b"slow 2\n")


@pytest.mark.e2e
def test_an_hf_call_rotates_the_log_by_its_config(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "ohf.toml").write_text(
        '[logging]\nmax_bytes = 1\nbackups = 2\n\n[[templates]]\ntemplateId = "t"\n'
        'maxNumber = 2\nimageId = "ami-0123456789abcdef0"\nvmType = "c5.large"\n'
    )
    for _ in range(4):
        code, _, err = run_ohf("getAvailableTemplates", {}, conf)
        assert code == 0, err
    logs = sorted(p.name for p in (conf / "log").glob("ohf.log*"))
    assert logs == ["ohf.log.1", "ohf.log.2", "ohf.log.lock"], logs
