"""One suite, run against every state store: json file, SQLite and DynamoDB (moto).

The same laws hold for each: a commit reads back exactly, a transaction may commit several
times, events are kept in order and filtered by request, export/import round-trips exactly,
contention fails clearly after `lock_timeout`, pruning works through the real HF calls, and a
corrupt store is reported and left as it is. DynamoDB adds its own: a version conflict or a
lost lease refuses the commit whole, and an expired lease can be taken over.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from returns.result import Failure, Success

from ohf import strategies as ohf_st
from ohf.cli import main
from ohf.config import Config, StorageConfig
from ohf.effects import fake, store
from ohf.effects.files import Settings, load_settings
from ohf.effects.store_lines import encode_lines
from ohf.events import Event, diff, replay
from ohf.hf import Shell, handle
from ohf.model import Request, State, Template
from tests.conftest import AL2023, REGION, default_subnet, run_ohf

STORES = ("json", "sqlite", "dynamodb")
AMI = "ami-0fa1ce0000000001"
TEMPLATE = Template(
    template_id="t1", max_number=10, image_id=AMI, vm_type="c5.large", subnet_id="subnet-1"
)
STAMP: dict[str, Any] = {"at": 1_700_000_000, "correlation": "test0000", "call": "test"}
FEW = hsettings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def make_settings(kind: str, directory: Path, *, lock_timeout: float = 0.3) -> Settings:
    """Settings for a `kind` store in `directory` (DynamoDB: a table of its own)."""
    storage = StorageConfig(
        type=kind,  # type: ignore[arg-type]
        lock_timeout=lock_timeout,
        # A table name of its own: a test never sees another's table, even in one moto.
        table=f"ohf-test-{uuid.uuid4().hex[:12]}" if kind == "dynamodb" else None,
        region=REGION,
    )
    name = "ohf-state.sqlite" if kind == "sqlite" else "ohf-state.json"
    return Settings(
        config=Config(storage=storage, templates=(TEMPLATE,)),
        source="<test>",
        conf_dir=str(directory),
        state_path=str(directory / name),
        log_path=None,
    )


@pytest.fixture(params=STORES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """An initialised, empty store of each kind (DynamoDB inside moto's in-process mock)."""
    made = make_settings(request.param, tmp_path)
    if request.param != "dynamodb":
        assert store.init(made).unwrap()
        yield made
        return
    from moto import mock_aws

    with mock_aws():
        created = store.init(made)
        assert "created" in created.unwrap(), created
        yield made


def commit(settings: Settings, state: State, *, owner: str = "test") -> tuple[Event, ...]:
    """Commit `state` in a transaction of its own; the events it was committed with."""
    with store.transaction(settings, owner=owner) as opened:
        txn = opened.unwrap()
        events = diff(txn.state, state, **STAMP)
        assert txn.commit(state, events) == Success(None)
    return events


def request(rid: str) -> Request:
    return Request(
        request_id=rid, template_id="t1", machine_count=1, client_token=rid, created_at=1
    )


def with_requests(*rids: str) -> State:
    return State(requests={r: request(r) for r in rids})


# --- reading and committing ---------------------------------------------------------------------


def test_an_empty_store_reads_as_the_empty_state(settings: Settings) -> None:
    assert store.read(settings).unwrap() == State()
    assert store.read_events(settings).unwrap() == ()
    assert store.export_lines(settings).unwrap() == encode_lines(State(), ())


@FEW
@given(states=st.lists(ohf_st.states(), min_size=1, max_size=3))
def test_any_sequence_of_commits_reads_back_the_last(
    settings: Settings, states: list[State]
) -> None:
    # The store keeps its content from one example to the next: each commit starts from
    # whatever the last one left, so additions, changes and deletions of rows all happen.
    for state in states:
        logged = store.read_events(settings).unwrap()
        events = commit(settings, state)
        assert store.read(settings).unwrap() == state
        assert store.read_events(settings).unwrap() == logged + events


def test_a_transaction_commits_several_times_and_each_commit_is_visible(
    settings: Settings,
) -> None:
    first, second = with_requests("req-a"), with_requests("req-a", "req-b")
    with store.transaction(settings, owner="checkpointing") as opened:
        txn = opened.unwrap()
        e1 = diff(txn.state, first, **STAMP)
        assert isinstance(txn.commit(first, e1), Success)
        # Durable at return: a reader (who takes no lock) sees the checkpoint at once.
        assert store.read(settings).unwrap() == first
        e2 = diff(first, second, **STAMP)
        assert isinstance(txn.commit(second, e2), Success)
    assert store.read(settings).unwrap() == second
    assert store.read_events(settings).unwrap() == e1 + e2
    assert replay(e1 + e2) == second


def test_events_are_kept_in_order_and_filtered_by_request(settings: Settings) -> None:
    commit(settings, with_requests("req-a"))
    commit(settings, with_requests("req-a", "req-b"))
    commit(settings, with_requests("req-b"))
    kinds = [(e.request_id, e.kind) for e in store.read_events(settings).unwrap()]
    assert kinds == [
        ("req-a", "request_created"),
        ("req-b", "request_created"),
        ("req-a", "request_pruned"),
    ]
    only_a = store.read_events(settings, "req-a").unwrap()
    assert [e.kind for e in only_a] == ["request_created", "request_pruned"]
    assert store.read_events(settings, "req-none").unwrap() == ()


# --- export and import --------------------------------------------------------------------------


@FEW
@given(state=ohf_st.states(), later=ohf_st.states())
def test_export_then_import_is_exact(settings: Settings, state: State, later: State) -> None:
    events = diff(State(), state, **STAMP) + diff(state, later, **STAMP)
    lines = encode_lines(later, events)
    assert store.import_lines(settings, lines, force=True).unwrap().lines == len(lines)
    assert store.read(settings).unwrap() == later
    assert store.read_events(settings).unwrap() == events
    assert store.export_lines(settings).unwrap() == lines
    assert replay(store.read_events(settings).unwrap()) == later


def test_import_refuses_a_non_empty_store_unless_forced(settings: Settings) -> None:
    kept = with_requests("req-kept")
    commit(settings, kept)
    lines = encode_lines(with_requests("req-new"), ())
    refused = store.import_lines(settings, lines)
    assert isinstance(refused, Failure)
    assert "--force" in refused.failure().message
    assert store.read(settings).unwrap() == kept
    store.import_lines(settings, lines, force=True).unwrap()
    assert store.read(settings).unwrap() == with_requests("req-new")
    assert store.read_events(settings).unwrap() == ()


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        (encode_lines(with_requests("req-x"), ())[1:], "header"),
        ([b'{"kind":"header","format":1}', b"{not json"], "line 2"),
        ([], "empty"),
    ],
)
def test_import_of_bad_lines_says_which_line_and_changes_nothing(
    settings: Settings, lines: list[bytes], says: str
) -> None:
    kept = with_requests("req-kept")
    commit(settings, kept)
    result = store.import_lines(settings, lines, force=True)
    assert isinstance(result, Failure)
    assert says in result.failure().message
    assert store.read(settings).unwrap() == kept


# --- contention ---------------------------------------------------------------------------------


def test_contention_fails_clearly_after_the_lock_timeout(settings: Settings) -> None:
    with store.transaction(settings, owner="holder") as held:
        assert isinstance(held, Success)
        with store.transaction(settings, owner="waiter") as waited:
            assert isinstance(waited, Failure)
            error = waited.failure()
            assert error.code == "busy"
            assert "lock_timeout" in error.message
        # Readers are not blocked by a writer.
        assert store.read(settings).unwrap() == State()
    with store.transaction(settings, owner="waiter") as later:
        assert isinstance(later, Success)


def test_a_write_call_that_cannot_get_the_store_exits_1_with_json(settings: Settings) -> None:
    shell = fake_shell(settings, fake.CloudRef(cloud=fake.new_cloud()))
    before = store.export_lines(settings).unwrap()
    with store.transaction(settings, owner="holder") as held:
        assert isinstance(held, Success)
        code, reply = hf(
            shell, "requestMachines", {"template": {"templateId": "t1", "machineCount": 1}}
        )
    assert code == 1
    assert set(reply) == {"message"}
    assert "lock_timeout" in reply["message"]
    assert store.export_lines(settings).unwrap() == before


# --- through the HF calls: events, mark_ended, pruning ------------------------------------------


def fake_shell(settings: Settings, ref: fake.CloudRef, correlation: str = "corr0001") -> Shell:
    counter = iter(range(1, 1000))
    return Shell(
        settings=settings,
        cloud=fake.interpreter(ref),
        now=lambda: ref.cloud.now,
        new_id=lambda prefix: f"{prefix}-{next(counter):08d}",
        correlation=correlation,
    )


def hf(shell: Shell, call: str, body: Any) -> tuple[int, Any]:
    reply = handle(shell, call, msgspec.json.encode(body))
    return reply.exit_code, json.loads(reply.body)


def lifecycle(shell: Shell) -> tuple[str, str]:
    """Request two machines, see them run, return them, see them gone: (request, return) ids."""
    code, asked = hf(
        shell, "requestMachines", {"template": {"templateId": "t1", "machineCount": 2}}
    )
    assert code == 0, asked
    rid = asked["requestId"]
    _, status = hf(shell, "getRequestStatus", {"requests": [{"requestId": rid}]})
    machines = [
        {"name": m["name"], "machineId": m["machineId"]} for m in status["requests"][0]["machines"]
    ]
    code, returned = hf(shell, "requestReturnMachines", {"machines": machines})
    assert code == 0, returned
    ret = returned["requestId"]
    for _ in range(5):
        _, status = hf(
            shell, "getRequestStatus", {"requests": [{"requestId": ret}, {"requestId": rid}]}
        )
        if all(r["status"] == "complete" for r in status["requests"]):
            break
    assert [r["status"] for r in status["requests"]] == ["complete", "complete"], status
    return rid, ret


def test_hf_calls_log_events_that_replay_to_the_state(settings: Settings) -> None:
    shell = fake_shell(settings, fake.CloudRef(cloud=fake.new_cloud()))
    rid, ret = lifecycle(shell)
    state = store.read(settings).unwrap()
    events = store.read_events(settings).unwrap()
    assert replay(events) == state
    assert {e.correlation for e in events} == {"corr0001"}
    kinds = [e.kind for e in store.read_events(settings, rid).unwrap()]
    assert kinds[0] == "request_created"
    assert "instances_launched" in kinds
    assert "machine_changed" in kinds
    assert store.read_events(settings, ret).unwrap()[0].kind == "return_requested"


def test_ended_requests_are_pruned_after_the_retention(settings: Settings) -> None:
    ref = fake.CloudRef(cloud=fake.new_cloud())
    shell = fake_shell(settings, ref)
    rid, ret = lifecycle(shell)
    state = store.read(settings).unwrap()
    ended = state.requests[rid].ended_at
    assert ended is not None
    assert state.returns[ret].ended_at is not None
    retention = int(settings.config.storage.retention_days * 86_400)
    poll = {"requests": [{"requestId": "req-unknown"}]}

    ref.cloud = msgspec.structs.replace(ref.cloud, now=ended + retention)
    hf(shell, "getRequestStatus", poll)
    assert rid in store.read(settings).unwrap().requests, "pruned before the retention ran out"

    ref.cloud = msgspec.structs.replace(ref.cloud, now=ended + retention + 1)
    assert hf(shell, "getRequestStatus", poll)[0] == 0
    assert store.read(settings).unwrap() == State()
    events = store.read_events(settings).unwrap()
    assert [e.kind for e in events[-2:]] == ["request_pruned", "return_pruned"]
    assert replay(events) == State()


# --- corrupt stores -----------------------------------------------------------------------------


def corrupt(settings: Settings) -> Callable[[], Any]:
    """Damage the store; a function giving what must stay exactly as it is."""
    kind = settings.config.storage.type
    path = Path(settings.state_path)
    if kind == "json":
        path.write_bytes(b'{"requests": {"req-a": ')
        return path.read_bytes
    if kind == "sqlite":
        path.write_bytes(b"not a database, whatever the name says " * 200)
        return path.read_bytes
    import boto3

    client = boto3.client("dynamodb", region_name=REGION)
    client.put_item(
        TableName=_table(settings),
        Item={"pk": {"S": "state"}, "sk": {"S": "req#req-bad"}, "body": {"B": b"\x00garbage"}},
    )
    return lambda: client.scan(TableName=_table(settings))["Items"]


def test_a_corrupt_store_is_reported_and_left_as_it_is(settings: Settings) -> None:
    commit(settings, with_requests("req-a"))
    snapshot = corrupt(settings)
    before = snapshot()
    read = store.read(settings)
    assert isinstance(read, Failure)
    assert read.failure().code == "state"
    assert "left as it is" in read.failure().message
    shell = fake_shell(settings, fake.CloudRef(cloud=fake.new_cloud()))
    for call, body in (
        ("requestMachines", {"template": {"templateId": "t1", "machineCount": 1}}),
        ("getRequestStatus", {"requests": [{"requestId": "req-a"}]}),
        ("getAvailableTemplates", {}),
    ):
        code, reply = hf(shell, call, body)
        assert code == 1
        assert "left as it is" in reply["message"]
    assert snapshot() == before


def test_a_torn_event_append_is_ignored_then_cut_off(tmp_path: Path) -> None:
    settings = make_settings("json", tmp_path)
    events = commit(settings, with_requests("req-a"))
    log = tmp_path / "ohf-state.events.jsonl"
    log.write_bytes(log.read_bytes() + b'{"at":1,"corr')  # a crash mid-append
    assert store.read_events(settings).unwrap() == events
    more = commit(settings, with_requests("req-a", "req-b"))
    assert store.read_events(settings).unwrap() == events + more
    assert log.read_bytes().count(b"\n") == 2


# --- DynamoDB's own guarantees ------------------------------------------------------------------


@pytest.fixture
def dynamodb(tmp_path: Path) -> Iterator[Settings]:
    from moto import mock_aws

    made = make_settings("dynamodb", tmp_path)
    with mock_aws():
        store.init(made).unwrap()
        yield made


def _table(settings: Settings) -> str:
    return str(settings.config.storage.table)


def _raw_client() -> Any:
    import boto3

    return boto3.client("dynamodb", region_name=REGION)


def test_dynamodb_init_is_idempotent(dynamodb: Settings) -> None:
    assert "already exists" in store.init(dynamodb).unwrap()


def test_dynamodb_version_conflict_is_refused_and_overwrites_nothing(dynamodb: Settings) -> None:
    commit(dynamodb, with_requests("req-a"))
    client = _raw_client()
    with store.transaction(dynamodb, owner="slow") as opened:
        txn = opened.unwrap()
        # Another writer (one that ignored the lease) commits in between.
        theirs = request("req-theirs")
        client.put_item(
            TableName=_table(dynamodb),
            Item={
                "pk": {"S": "state"},
                "sk": {"S": "req#req-theirs"},
                "body": {"B": zlib.compress(msgspec.json.encode(theirs))},
            },
        )
        client.update_item(
            TableName=_table(dynamodb),
            Key={"pk": {"S": "state"}, "sk": {"S": "!head"}},
            UpdateExpression="SET ver = ver + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        mine = with_requests("req-a", "req-mine")
        refused = txn.commit(mine, diff(txn.state, mine, **STAMP))
    assert isinstance(refused, Failure)
    assert refused.failure().code == "conflict"
    assert "state changed" in refused.failure().message
    assert store.read(dynamodb).unwrap() == State(
        requests={"req-a": request("req-a"), "req-theirs": theirs}
    )
    assert [e.request_id for e in store.read_events(dynamodb).unwrap()] == ["req-a"]


def test_dynamodb_expired_lease_is_taken_over_and_the_late_writer_refused(
    dynamodb: Settings,
) -> None:
    client = _raw_client()
    with store.transaction(dynamodb, owner="late") as late_opened:
        late = late_opened.unwrap()
        # The holder outlived its lease (a hung process): make the lease expired.
        client.update_item(
            TableName=_table(dynamodb),
            Key={"pk": {"S": "state"}, "sk": {"S": "!lease"}},
            UpdateExpression="SET expires = :past",
            ExpressionAttributeValues={":past": {"N": "0"}},
        )
        with store.transaction(dynamodb, owner="next") as next_opened:
            took_over = next_opened.unwrap()
            theirs = with_requests("req-next")
            assert isinstance(took_over.commit(theirs, diff(State(), theirs, **STAMP)), Success)
        mine = with_requests("req-late")
        refused = late.commit(mine, diff(late.state, mine, **STAMP))
    assert isinstance(refused, Failure)
    assert refused.failure().code == "conflict"
    assert "no longer holds the lease" in refused.failure().message
    assert store.read(dynamodb).unwrap() == with_requests("req-next")
    # The late holder's exit did not release the lease of the one who took over (now gone too).
    with store.transaction(dynamodb, owner="third") as third:
        assert isinstance(third, Success)


def _lease(settings: Settings, host: str, pid: int) -> None:
    _raw_client().put_item(
        TableName=_table(settings),
        Item={
            "pk": {"S": "state"},
            "sk": {"S": "!lease"},
            "owner": {"S": "holder01"},
            "expires": {"N": str(time.time() + 3600)},
            "host": {"S": host},
            "pid": {"N": str(pid)},
        },
    )


def test_dynamodb_lease_of_a_killed_process_on_this_host_is_taken_at_once(
    dynamodb: Settings,
) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    _lease(dynamodb, socket.gethostname(), finished.pid)
    with store.transaction(dynamodb, owner="next") as opened:
        assert isinstance(opened, Success)


def test_dynamodb_live_lease_elsewhere_is_waited_for_and_named(dynamodb: Settings) -> None:
    _lease(dynamodb, "other-master", 1)
    with store.transaction(dynamodb, owner="next") as opened:
        assert isinstance(opened, Failure)
        assert opened.failure().code == "busy"
        assert "holder01 on other-master" in opened.failure().message


def test_dynamodb_commit_larger_than_one_transaction(dynamodb: Settings) -> None:
    # 98 data items fit beside the lease and head updates: 110 requests take two transactions.
    many = with_requests(*(f"req-{n:04d}" for n in range(110)))
    commit(dynamodb, many)
    assert store.read(dynamodb).unwrap() == many
    head = _raw_client().get_item(
        TableName=_table(dynamodb), Key={"pk": {"S": "state"}, "sk": {"S": "!head"}}
    )["Item"]
    assert "partial" not in head
    commit(dynamodb, with_requests("req-0001"))
    assert store.read(dynamodb).unwrap() == with_requests("req-0001")


def test_dynamodb_half_written_commit_of_a_dead_writer(dynamodb: Settings) -> None:
    kept = with_requests("req-a")
    commit(dynamodb, kept)
    # A writer died between the transactions of a big commit: the head says `partial`.
    _raw_client().update_item(
        TableName=_table(dynamodb),
        Key={"pk": {"S": "state"}, "sk": {"S": "!head"}},
        UpdateExpression="SET #p = :yes",
        ExpressionAttributeNames={"#p": "partial"},
        ExpressionAttributeValues={":yes": {"BOOL": True}},
    )
    # While some call holds a live lease, readers wait for it to finish the state...
    _lease(dynamodb, "other-master", 1)
    waited = store.read(dynamodb)
    assert isinstance(waited, Failure)
    assert waited.failure().code == "busy"
    # ...with no live writer, the half is all there is, and it is read.
    _raw_client().delete_item(
        TableName=_table(dynamodb), Key={"pk": {"S": "state"}, "sk": {"S": "!lease"}}
    )
    assert store.read(dynamodb).unwrap() == kept
    # The next writer carries on from it (its own lease is no reason to wait) and completes it.
    commit(dynamodb, with_requests("req-a", "req-b"))
    assert store.read(dynamodb).unwrap() == with_requests("req-a", "req-b")
    head = _raw_client().get_item(
        TableName=_table(dynamodb), Key={"pk": {"S": "state"}, "sk": {"S": "!head"}}
    )["Item"]
    assert "partial" not in head


def test_dynamodb_missing_table_says_to_run_init(tmp_path: Path) -> None:
    from moto import mock_aws

    with mock_aws():
        settings = make_settings("dynamodb", tmp_path)
        read = store.read(settings)
        assert isinstance(read, Failure)
        assert "ohf storage init" in read.failure().message


# --- configuration and CLI ----------------------------------------------------------------------


def test_sqlite_store_defaults_to_the_work_dir(tmp_path: Path) -> None:
    conf = tmp_path / "ohf.toml"
    conf.write_text('[storage]\ntype = "sqlite"\n')
    env = {"HF_PROVIDER_WORKDIR": str(tmp_path / "work")}
    loaded = load_settings(str(conf), env, str(tmp_path)).unwrap()
    assert loaded.state_path == str(tmp_path / "work" / "ohf-state.sqlite")


def test_dynamodb_store_needs_a_table(tmp_path: Path) -> None:
    conf = tmp_path / "ohf.toml"
    conf.write_text('[storage]\ntype = "dynamodb"\n')
    loaded = load_settings(str(conf), {}, str(tmp_path))
    assert isinstance(loaded, Failure)
    assert "table" in loaded.failure().message


def _ohf(capsys: pytest.CaptureFixture[str], conf: Path, *args: str) -> tuple[int, str, str]:
    """A human command, in-process (exit code, stdout, stderr), with `conf/ohf.toml`."""
    code = main([*args, "--config", str(conf / "ohf.toml")])
    out, err = capsys.readouterr()
    return code, out, err


def _toml(conf: Path, url: str, storage: str) -> None:
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "ohf.toml").write_text(
        f"""
[aws]
region = "{REGION}"
endpoint_url = "{url}"

[storage]
{storage}

[[templates]]
templateId = "t1"
maxNumber = 4
imageId = "{AL2023}"
subnetId = "{default_subnet(url)}"
vmType = "c5.large"
"""
    )


@pytest.mark.e2e
def test_cli_dynamodb_store_against_moto_server(
    tmp_path: Path, aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "conf"
    table = f"ohf-{uuid.uuid4().hex[:8]}"
    _toml(conf, aws, f'type = "dynamodb"\ntable = "{table}"\nendpoint_url = "{aws}"')
    code, out, err = _ohf(capsys, conf, "storage", "init")
    assert code == 0, err
    assert table in out

    # HF's calls as HF makes them: separate processes.
    code, asked, _ = run_ohf(
        "requestMachines", {"template": {"templateId": "t1", "machineCount": 2}}, conf
    )
    assert code == 0, asked
    rid = asked["requestId"]  # type: ignore[index]
    code, status, _ = run_ohf("getRequestStatus", {"requests": [{"requestId": rid}]}, conf)
    assert code == 0
    assert len(status["requests"][0]["machines"]) == 2  # type: ignore[index]
    code, listing, _ = run_ohf("getAvailableTemplates", {}, conf)
    assert listing["templates"][0]["availableNumber"] == 2  # type: ignore[index]

    code, out, _ = _ohf(capsys, conf, "events", "--request", rid)
    assert code == 0
    first = out.splitlines()[0]
    assert all(x in first for x in ("requestMachines", "request_created", rid))
    code, out, _ = _ohf(capsys, conf, "events", "--json")
    assert {json.loads(x)["request_id"] for x in out.splitlines()} == {rid}

    dump_file = tmp_path / "dump.jsonl"
    code, _, err = _ohf(capsys, conf, "storage", "export", str(dump_file))
    assert code == 0, err
    code, _, err = _ohf(capsys, conf, "storage", "import", str(dump_file))
    assert code == 1
    assert "--force" in err

    # Move the store to SQLite: it exports the same lines and serves the next poll.
    sqlite_conf = tmp_path / "sqlite"
    _toml(sqlite_conf, aws, 'type = "sqlite"\npath = "state.sqlite"')
    code, _, err = _ohf(capsys, sqlite_conf, "storage", "import", str(dump_file))
    assert code == 0, err
    code, out, _ = _ohf(capsys, sqlite_conf, "storage", "export")
    assert out.encode() == dump_file.read_bytes()
    code, again, _ = run_ohf("getRequestStatus", {"requests": [{"requestId": rid}]}, sqlite_conf)
    assert code == 0
    assert again["requests"][0]["status"] == status["requests"][0]["status"]  # type: ignore[index]


def test_cli_storage_commands_fail_readably(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "ohf.toml").write_text('[storage]\ntype = "json"\n')
    code, out, _ = _ohf(capsys, conf, "storage", "init")
    assert code == 0
    assert "nothing to create" in out
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"{not json\n")))
    code, _, err = _ohf(capsys, conf, "storage", "import")
    assert code == 1
    assert "line 1" in err
    assert _ohf(capsys, conf, "storage", "frobnicate")[0] == 2
    assert _ohf(capsys, conf, "events")[:2] == (0, "")
    missing = _ohf(capsys, conf, "storage", "import", str(tmp_path / "nope.jsonl"))
    assert missing[0] == 1
    assert "does not exist" in missing[2]
