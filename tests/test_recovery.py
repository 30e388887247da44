"""Recovery: `ohf storage check` says whether store and log agree, changing nothing, and
`ohf storage import --force` replaces an unreadable store after keeping it aside.

Each store is damaged the way a disk, a hand edit or a bug would (garbage bytes, an event row
or item lost, a state edited behind the log's back); check reports it with exit 1, import
without `--force` refuses and leaves it, import with `--force` names where the bad one went.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from returns.result import Failure

from ohf.cli import main
from ohf.effects import fake, store, store_json
from ohf.effects.files import Settings
from tests.test_compaction import START, commit_at
from tests.test_stores import REGION, STORES, corrupt, fake_shell, make_settings, with_requests


@pytest.fixture(params=STORES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """An initialised store of each kind holding two requests (DynamoDB on moto, in-process)."""
    made = make_settings(request.param, tmp_path)

    def seeded() -> Settings:
        store.init(made).unwrap()
        commit_at(made, with_requests("req-a"), START)
        commit_at(made, with_requests("req-a", "req-b"), START + 60)
        return made

    if request.param != "dynamodb":
        yield seeded()
        return
    from moto import mock_aws

    with mock_aws():
        yield seeded()


def _cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    *args: str,
    now: int = START,
) -> tuple[int, str, str]:
    """`ohf ARGS` in-process, with the test's settings as the config and the clock at `now`."""
    from ohf.provider import Provider

    monkeypatch.setattr(Provider, "open", staticmethod(lambda *_a, **_k: _opened(settings, now)))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _opened(settings: Settings, now: int) -> Any:
    from returns.result import Success

    from ohf.provider import Provider

    ref = fake.CloudRef(cloud=fake.new_cloud(now=now))
    return Success(Provider.over(fake_shell(settings, ref)))


def test_storage_compact_by_hand_folds_what_is_past_the_retention(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _cli(capsys, monkeypatch, settings, "storage", "compact")
    assert code == 0
    assert out.startswith("nothing to fold: 2 event(s) (")
    later = START + 8 * 86_400
    code, out, _ = _cli(capsys, monkeypatch, settings, "storage", "compact", now=later)
    assert code == 0
    assert out.startswith("folded 2 event(s) into the snapshot (through 2023-11-14T22:14:20Z)")
    code, out, _ = _cli(capsys, monkeypatch, settings, "storage", "check", now=later)
    assert code == 0
    assert "snapshot: 2 event(s) folded" in out
    assert store.read_events(settings).unwrap() == ()


def test_check_says_a_healthy_store_agrees_with_its_log(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.export_lines(settings).unwrap()
    code, out, _ = _cli(capsys, monkeypatch, settings, "storage", "check")
    assert code == 0, out
    assert "2 request(s)" in out
    assert "ok: the state equals the log's replay" in out
    code, out, _ = _cli(capsys, monkeypatch, settings, "storage", "check", "--json")
    figures = msgspec.json.decode(out)
    assert (code, figures["ok"], figures["events"], figures["problems"]) == (0, True, 2, [])
    assert store.export_lines(settings).unwrap() == before


def _lose_an_event(settings: Settings) -> None:
    """Damage the log behind the state's back: the first commit's events disappear."""
    kind = settings.config.storage.type
    path = Path(settings.state_path)
    if kind == "json":
        content = store_json.load_file(path).unwrap()
        log = store_json.events_path(path)
        lines = log.read_bytes().splitlines(keepends=True)
        log.write_bytes(b"".join(lines[1:]))
        mark = store_json._mark(content)
        store_json.save(
            path, store_json._state(content), msgspec.structs.replace(mark, size=log.stat().st_size)
        )
    elif kind == "sqlite":
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM events WHERE seq = (SELECT min(seq) FROM events)")
    else:
        import boto3

        client = boto3.client("dynamodb", region_name=REGION)
        table = str(settings.config.storage.table)
        items = client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "events"}},
        )["Items"]
        first = min(i["sk"]["S"] for i in items if not i["sk"]["S"].startswith("!"))
        client.delete_item(TableName=table, Key={"pk": {"S": "events"}, "sk": {"S": first}})


def test_check_reports_a_log_that_disagrees_with_the_state_and_changes_nothing(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_an_event(settings)
    before = store.export_lines(settings).unwrap()
    code, out, _ = _cli(capsys, monkeypatch, settings, "storage", "check")
    assert code == 1, out
    assert "problem:  request req-a is in the state but not in the log" in out
    assert "FAILED" in out
    assert store.export_lines(settings).unwrap() == before


def test_check_reports_an_unreadable_store_with_exit_1(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = corrupt(settings)
    before = kept()
    code, out, _ = _cli(capsys, monkeypatch, settings, "storage", "check")
    assert code == 1, out
    assert "unreadable" in out
    assert kept() == before


def test_import_force_replaces_an_unreadable_store_after_keeping_it_aside(
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    backup = tmp_path / "backup.jsonl"
    backup.write_bytes(b"".join(line + b"\n" for line in store.export_lines(settings).unwrap()))
    kept = corrupt(settings)
    damaged = kept()

    # Without --force the import refuses, and the damaged store stays exactly as it is.
    code, _, err = _cli(capsys, monkeypatch, settings, "storage", "import", str(backup))
    assert code == 1
    assert "unreadable" in err
    assert kept() == damaged

    code, out, err = _cli(
        capsys, monkeypatch, settings, "storage", "import", "--force", str(backup)
    )
    assert code == 0, err
    assert "the unreadable store was kept aside as " in out
    aside = out.split("kept aside as ", 1)[1].strip()
    assert store.read(settings).unwrap() == with_requests("req-a", "req-b")
    assert store.check(settings).ok
    kind = settings.config.storage.type
    if kind == "dynamodb":
        partition = aside.split()[1]
        assert _partition(settings, partition), "nothing kept aside"
        assert any(
            b"garbage" in i.get("body", {}).get("B", b"") for i in _partition(settings, partition)
        )
    else:
        assert Path(aside).read_bytes() == damaged


def _partition(settings: Settings, pk: str) -> list[dict[str, Any]]:
    import boto3

    return boto3.client("dynamodb", region_name=REGION).query(
        TableName=str(settings.config.storage.table),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )["Items"]


def test_import_force_of_a_readable_store_keeps_nothing_aside(settings: Settings) -> None:
    lines = store.export_lines(settings).unwrap()
    done = store.import_lines(settings, lines, force=True).unwrap()
    assert done.kept_aside is None
    assert isinstance(store.import_lines(settings, lines), Failure)
