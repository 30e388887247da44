"""`[aws] tag_instance_id` and `[aws] terminate_spot_on_notice` (IBM's AWS_TAG_InstanceID and
AWS_SPOT_TERMINATE_ON_RECLAIM), on the fake cloud and against moto_server.

InstanceID tags: one CreateTags per newly running machine (its volumes in the same call, since
one call gives all its resources the same value), never twice for one machine. Spot notices:
the getReturnRequests that reports a noticed machine also terminates it, one TerminateInstances
per provider, and records it in the state.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import msgspec

from ohf.config import AwsConfig, ProviderConfig
from ohf.effects import fake
from ohf.effects.files import STATE_FILE
from ohf.intents import LaunchSpec, RunInstances, TagInstanceIds
from ohf.model import INSTANCE_ID_TAG, State, Template
from ohf.provider import Provider
from ohf.testing import FakeProvider, call, call_all, door, fake_provider, fake_providers
from ohf.upkeep import ENDED_ON_NOTICE
from tests.conftest import AL2023, default_subnet, ec2_client, hf_env, write_ibm_conf
from tests.moto_patched import SPOT_STATUS_TAG

ON_DEMAND = Template(
    template_id="od", max_number=20, image_id="ami-0123456789abcdef0", vm_type="c5.large"
)
SPOT = msgspec.structs.replace(ON_DEMAND, template_id="spot", price_type="spot")


def with_aws(provider: Any, **aws: Any) -> Any:
    """The provider (or providers) with `[aws]` settings `aws`."""
    settings = provider.shell.settings
    config = msgspec.structs.replace(settings.config, aws=AwsConfig(**aws))
    shell = msgspec.structs.replace(
        provider.shell, settings=msgspec.structs.replace(settings, config=config)
    )
    return msgspec.structs.replace(provider, shell=shell)


def request(provider: FakeProvider, template_id: str, count: int) -> str:
    code, out = call(
        provider,
        "requestMachines",
        {"template": {"templateId": template_id, "machineCount": count}},
    )
    assert code == 0, out
    return str(out["requestId"])


def status(provider: FakeProvider, *request_ids: str) -> dict[str, Any]:
    code, out = call(
        provider, "getRequestStatus", {"requests": [{"requestId": r} for r in request_ids]}
    )
    assert code == 0, out
    return out  # type: ignore[no-any-return]


def machines_of(out: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for r in out["requests"] for m in r["machines"]]


def creates(ref: fake.CloudRef) -> int:
    return ref.cloud.calls.count("CreateTags")


def stored(provider: FakeProvider) -> State:
    return door(provider).state().unwrap()


# --- InstanceID tags, fake cloud ------------------------------------------------------------------


def test_newly_running_machines_and_their_volumes_are_tagged_once(tmp_path: Path) -> None:
    provider = with_aws(fake_provider([ON_DEMAND], tmp_path), tag_instance_id=True)
    first = request(provider, "od", 3)

    machines = machines_of(status(provider, first))
    assert creates(provider.ref) == 3  # one per machine: each has its own value
    for _ in range(2):
        status(provider, first)
    assert creates(provider.ref) == 3  # never twice

    second = request(provider, "od", 2)
    machines += machines_of(status(provider, first, second))
    assert creates(provider.ref) == 5  # only the newly running ones

    cloud = provider.ref.cloud
    for machine in machines:
        item = cloud.instances[machine["machineId"]]
        assert item.tags[INSTANCE_ID_TAG] == machine["machineId"]
        (volume,) = item.instance.volume_ids
        assert cloud.volume_tags[volume] == {INSTANCE_ID_TAG: machine["machineId"]}
    held = [m for r in stored(provider).requests.values() for m in r.machines]
    assert len(held) == 5 and all(m.id_tagged for m in held)


def test_without_the_option_nothing_is_tagged(tmp_path: Path) -> None:
    provider = fake_provider([ON_DEMAND], tmp_path)
    status(provider, request(provider, "od", 2))
    assert creates(provider.ref) == 0
    assert not any(INSTANCE_ID_TAG in x.tags for x in provider.ref.cloud.instances.values())


def test_a_refused_tagging_is_noted_and_tried_again_next_poll(tmp_path: Path) -> None:
    provider = with_aws(fake_provider([ON_DEMAND], tmp_path), tag_instance_id=True)
    rid = request(provider, "od", 2)
    provider.ref.cloud = fake.inject(
        provider.ref.cloud, fake.Fault(operation="CreateTags", code="UnauthorizedOperation")
    )

    out = status(provider, rid)

    assert "InstanceID tags not set" in out["requests"][0]["message"]
    assert "UnauthorizedOperation" in out["requests"][0]["message"]
    assert not any(m.id_tagged for r in stored(provider).requests.values() for m in r.machines)
    status(provider, rid)
    assert all(m.id_tagged for r in stored(provider).requests.values() for m in r.machines)


def test_an_instance_gone_before_its_tag_does_not_stop_the_others() -> None:
    cloud = fake.new_cloud()
    spec = LaunchSpec(
        image_id=None, instance_type="c5.large", min_count=2, max_count=2, client_token="t"
    )
    cloud, launched = fake.step(cloud, RunInstances(spec=spec))
    a, b = launched.unwrap()
    ghost = "i-0000000000000dead"
    intent = TagInstanceIds(
        instances=((ghost, ()), (a.instance_id, a.volume_ids), (b.instance_id, b.volume_ids))
    )
    cloud, answer = fake.step(cloud, intent)
    outcome = answer.unwrap()
    assert outcome[a.instance_id] == outcome[b.instance_id] == ""
    assert "InvalidInstanceID.NotFound" in outcome[ghost]
    assert cloud.calls.count("CreateTags") == 3


# --- Spot notices, fake cloud ---------------------------------------------------------------------


def held_refs(out: dict[str, Any]) -> dict[str, Any]:
    return {
        "machines": [{"name": m["name"], "machineId": m["machineId"]} for m in machines_of(out)]
    }


def test_a_noticed_spot_machine_is_reported_then_terminated_at_once(tmp_path: Path) -> None:
    provider = with_aws(fake_provider([SPOT, ON_DEMAND], tmp_path), terminate_spot_on_notice=True)
    spot_rid, od_rid = request(provider, "spot", 2), request(provider, "od", 1)
    out = status(provider, spot_rid, od_rid)
    noticed, calm = (m["machineId"] for m in machines_of(out)[:2])
    provider.ref.cloud = fake.notify_interruption(provider.ref.cloud, noticed)
    terminations = provider.ref.cloud.calls.count("TerminateInstances")

    code, reply = call(provider, "getReturnRequests", held_refs(out))

    assert code == 0, reply
    assert reply["requests"] == [
        {
            "machine": next(m["name"] for m in machines_of(out) if m["machineId"] == noticed),
            "machineId": noticed,
            "gracePeriod": 0,
        }
    ]
    assert "1 noticed spot machine(s) terminated at once" in reply["message"]
    cloud = provider.ref.cloud
    assert cloud.calls.count("TerminateInstances") == terminations + 1
    assert cloud.instances[noticed].instance.state == "shutting-down"
    assert cloud.instances[calm].instance.state == "running"
    # The state says what happened, and why.
    (machine,) = [
        m for m in stored(provider).requests[spot_rid].machines if m.machine_id == noticed
    ]
    assert machine.state == "shutting-down" and ENDED_ON_NOTICE in machine.message
    assert machine.returned_by is None  # still HF's to return
    events = door(provider).events(spot_rid).unwrap()
    assert any(e.call == "getReturnRequests" and e.kind == "machine_changed" for e in events)

    # Reported again (it is gone) until HF returns it, never terminated twice.
    code, again = call(provider, "getReturnRequests", held_refs(out))
    assert [r["machineId"] for r in again["requests"]] == [noticed]
    assert provider.ref.cloud.calls.count("TerminateInstances") == terminations + 1


def test_without_the_option_a_notice_is_reported_and_left_to_aws(tmp_path: Path) -> None:
    provider = fake_provider([SPOT], tmp_path)
    out = status(provider, request(provider, "spot", 1))
    (noticed,) = (m["machineId"] for m in machines_of(out))
    provider.ref.cloud = fake.notify_interruption(provider.ref.cloud, noticed)
    before = (tmp_path / STATE_FILE).read_bytes()

    code, reply = call(provider, "getReturnRequests", held_refs(out))

    assert code == 0
    assert [(r["machineId"], r["gracePeriod"]) for r in reply["requests"]] == [(noticed, 120)]
    assert provider.ref.cloud.instances[noticed].instance.state == "running"
    assert (tmp_path / STATE_FILE).read_bytes() == before  # read-only: no lock, no write


def test_noticed_machines_are_terminated_in_one_call_per_provider(tmp_path: Path) -> None:
    names = ("east", "west")
    both = with_aws(
        fake_providers(
            [msgspec.structs.replace(SPOT, max_number=2)],
            tmp_path,
            [ProviderConfig(name=n) for n in names],
        ),
        terminate_spot_on_notice=True,
    )
    first = FakeProvider(shell=both.shell, ref=both.refs["east"])
    rids = [request(first, "spot", 2), request(first, "spot", 2)]  # east is full: west takes it
    out = status(first, *rids)
    for name in names:
        ref = both.refs[name]
        for instance_id in list(fake.live_instances(ref.cloud)):
            ref.cloud = fake.notify_interruption(ref.cloud, instance_id)
    before = {n: both.refs[n].cloud.calls.count("TerminateInstances") for n in names}

    code, reply = call_all(both, "getReturnRequests", held_refs(out))

    assert code == 0 and len(reply["requests"]) == 4
    for name in names:
        assert both.refs[name].cloud.calls.count("TerminateInstances") == before[name] + 1
        assert not fake.live_instances(both.refs[name].cloud)


def test_a_failed_termination_still_reports_the_notice(tmp_path: Path) -> None:
    provider = with_aws(fake_provider([SPOT], tmp_path), terminate_spot_on_notice=True)
    out = status(provider, request(provider, "spot", 1))
    (noticed,) = (m["machineId"] for m in machines_of(out))
    cloud = fake.notify_interruption(provider.ref.cloud, noticed)
    provider.ref.cloud = fake.inject(
        cloud, fake.Fault(operation="TerminateInstances", code="UnauthorizedOperation")
    )

    code, reply = call(provider, "getReturnRequests", held_refs(out))

    assert code == 0
    assert [(r["machineId"], r["gracePeriod"]) for r in reply["requests"]] == [(noticed, 120)]
    assert "could not terminate 1 noticed spot machine(s)" in reply["message"]
    assert provider.ref.cloud.instances[noticed].instance.state == "running"


# --- Against moto_server -----------------------------------------------------------------------


def ibm_conf_with(tmp_path: Path, url: str, template: dict[str, Any], **keys: Any) -> Path:
    conf = write_ibm_conf(tmp_path / "conf", url, [template])
    config = json.loads((conf / "awsprov_config.json").read_text())
    (conf / "awsprov_config.json").write_text(json.dumps({**config, **keys}))
    return conf


def poll_until_complete(door: Provider, request_id: str) -> list[Any]:
    for _ in range(30):
        (req,) = door.request_status(request_id).unwrap().requests
        if req.status == "complete":
            return list(req.machines)
        time.sleep(0.2)
    raise AssertionError(f"{request_id} never completed: {req}")


def test_instances_and_their_volumes_get_their_instance_id_tag_on_moto(
    tmp_path: Path, aws: str
) -> None:
    template = {
        "templateId": "t1",
        "maxNumber": 5,
        "imageId": AL2023,
        "subnetId": default_subnet(aws),
        "vmType": "t3.micro",
        "rootDeviceVolumeSize": 12,
    }
    conf = ibm_conf_with(tmp_path, aws, template, AWS_TAG_InstanceID=True)
    calls: list[str] = []
    door = Provider.open(env=hf_env(conf), cwd=str(conf), on_call=calls.append).unwrap()

    request_id = door.request_machines("t1", 3).unwrap().request_id
    machines = poll_until_complete(door, request_id)
    door.request_status(request_id)  # a later poll tags nothing again

    assert calls.count("CreateTags") == 3  # one per instance, its volumes in the same call
    assert all(m.id_tagged for m in door.state().unwrap().requests[request_id].machines)
    ec2 = ec2_client(aws)
    ids = [m.machine_id for m in machines]
    found = [
        i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]
    ]
    assert len(found) == 3
    for instance in found:
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert tags[INSTANCE_ID_TAG] == instance["InstanceId"]
        volumes = [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]]
        assert volumes
        for volume in ec2.describe_volumes(VolumeIds=volumes)["Volumes"]:
            vtags = {t["Key"]: t["Value"] for t in volume.get("Tags", [])}
            assert vtags[INSTANCE_ID_TAG] == instance["InstanceId"]


FLEET_ROLE = "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role"


def test_a_noticed_spot_machine_is_terminated_on_moto(tmp_path: Path, aws: str) -> None:
    """moto gap (tests/moto_patched.py): moto never marks a spot request for interruption; the
    test tags one instance so that its spot request shows "marked-for-termination"."""
    template = {
        "templateId": "spot",
        "maxNumber": 5,
        "imageId": AL2023,
        "subnetId": default_subnet(aws),
        "vmType": "t3.micro",
        "providerApi": "SpotFleet",
        "fleetType": "request",
        "priceType": "spot",
        "fleetRole": FLEET_ROLE,
        "allocationStrategy": "lowestPrice",
    }
    conf = ibm_conf_with(tmp_path, aws, template, AWS_SPOT_TERMINATE_ON_RECLAIM=True)
    calls: list[str] = []
    door = Provider.open(env=hf_env(conf), cwd=str(conf), on_call=calls.append).unwrap()
    machines = poll_until_complete(door, door.request_machines("spot", 2).unwrap().request_id)
    noticed, calm = machines[0].machine_id, machines[1].machine_id
    ec2 = ec2_client(aws)
    ec2.create_tags(
        Resources=[noticed], Tags=[{"Key": SPOT_STATUS_TAG, "Value": "marked-for-termination"}]
    )
    before = calls.count("TerminateInstances")

    reply = door.return_requests(noticed, calm).unwrap()

    assert [(r.machine_id, r.grace_period) for r in reply.requests] == [(noticed, 0)]
    assert calls.count("TerminateInstances") == before + 1
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances(InstanceIds=[noticed, calm])["Reservations"]
        for i in r["Instances"]
    }
    assert states == {noticed: "terminated", calm: "running"}
    (request,) = door.state().unwrap().requests.values()
    (machine,) = [m for m in request.machines if m.machine_id == noticed]
    # As TerminateInstances answered it (moto: shutting-down, then terminated at once).
    assert machine.state in ("shutting-down", "terminated")
    assert ENDED_ON_NOTICE in machine.message
