"""Failover by AWS's error codes: carried as codes from both interpreters to the core.

A fleet's errors come as `Errors[].ErrorCode` (CreateFleet, DescribeFleets), as history event
subtypes (EC2 Fleet service-error, Spot Fleet error events) and as failed scaling activities
(no code field: their text is read for whole known codes only). The core decides failover by
those codes; only an error without a code of its own is read for one, and never as a substring:
an unrelated message containing "Unsupported" does not fail over.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from ohf.codes import codes_in, fails_over, leading_code
from ohf.effects.aws.create_fleets import fleet_launch
from ohf.effects.aws.describe_fleets import _history_errors, _scaling_failures, ec2_fleet_info
from ohf.fleets import fleet_verdict
from ohf.model import FleetInfo, OhfError
from tests.test_parts import fleet_part, spilled

UNRELATED = (
    "UnsupportedOperation: The operation is not supported for this fleet",
    "InvalidParameterValue: Unsupported tenancy 'host' for c5.large",
    "InvalidParameterCombination: InstanceTypeUnsupported in this request",
    "fleet-1 stopped short: the configuration is unsupported: use another AMI",
)


@pytest.mark.parametrize("message", UNRELATED)
def test_an_unrelated_message_containing_unsupported_does_not_fail_over(message: str) -> None:
    assert codes_in(message) == ()
    assert not fails_over(OhfError(message=message, code="fleet"))
    assert not fails_over(OhfError(message=message, code="InvalidParameterValue"))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # AWS's code decides, whatever the text says.
        (
            OhfError(message="The requested configuration is not supported", code="Unsupported"),
            True,
        ),
        (
            OhfError(message="InsufficientInstanceCapacity: none", code="InvalidParameterValue"),
            False,
        ),
        (OhfError(message="slow down", code="RequestLimitExceeded"), True),
        # A server error leaves AWS's side unknown: never failed over (the request stays open).
        (OhfError(message="InsufficientInstanceCapacity: x", code="InternalError"), False),
        # Text only (ohf's "fleet" code): a whole known code where AWS writes codes.
        (
            OhfError(
                message="InsufficientInstanceCapacity: none (c5.large/subnet-1)", code="fleet"
            ),
            True,
        ),
        (OhfError(message="fleet-1 stopped short: Unsupported: not here", code="fleet"), True),
        (
            OhfError(message="Could not launch. VcpuLimitExceeded - over the quota", code="fleet"),
            True,
        ),
        (OhfError(message="we had no InsufficientInstanceCapacity today", code="fleet"), False),
    ],
)
def test_failover_is_decided_by_the_code_and_text_only_as_a_last_resort(
    error: OhfError, expected: bool
) -> None:
    assert fails_over(error) is expected


def test_codes_in_text_are_whole_known_codes_mapped_from_history_subtypes() -> None:
    assert codes_in("ThrottlingException: slow; Throttling: slower") == (
        "ThrottlingException",
        "Throttling",
    )
    assert codes_in("spotInstanceCountLimitExceeded: You've reached the limit") == (
        "MaxSpotInstanceCountExceeded",
    )
    assert leading_code(("InvalidParameterValue", "InsufficientInstanceCapacity")) == (
        "InsufficientInstanceCapacity"
    )
    assert leading_code(("InvalidParameterValue",)) == "InvalidParameterValue"
    assert leading_code(()) == "fleet"


# --- the boto3 interpreter reads AWS's codes ---------------------------------------------------


def test_create_fleet_errors_carry_their_error_codes() -> None:
    from ohf.intents import FleetSpec, Override

    spec = FleetSpec(
        api="EC2Fleet",
        name="req-1",
        launch_template_id="lt-1",
        overrides=(Override(instance_type="c5.large"),),
        target_units=2,
        client_token="req-1",
    )
    launched = fleet_launch(
        {
            "FleetId": "fleet-1",
            "Errors": [
                {"ErrorCode": "Unsupported", "ErrorMessage": "not in us-east-1e"},
                {"ErrorCode": "InvalidParameterValue", "ErrorMessage": "Unsupported tenancy"},
                {"ErrorCode": "Unsupported", "ErrorMessage": "not in us-east-1f"},
            ],
        },
        spec,
    )
    assert launched.codes == ("Unsupported", "InvalidParameterValue")
    assert launched.errors[1] == "InvalidParameterValue: Unsupported tenancy"


def test_describe_fleets_errors_carry_their_error_codes() -> None:
    info = ec2_fleet_info(
        {
            "FleetId": "fleet-1",
            "FleetState": "active",
            "Errors": [{"ErrorCode": "InsufficientInstanceCapacity", "ErrorMessage": "none"}],
        }
    )
    assert info.codes == ("InsufficientInstanceCapacity",)


class _History:
    """An EC2 client answering one page of fleet history."""

    def __init__(self, events: list[dict[str, str]]) -> None:
        self.events = events

    def describe_fleet_history(self, **_: Any) -> dict[str, Any]:
        return {"HistoryRecords": [{"EventInformation": e} for e in self.events]}

    describe_spot_fleet_request_history = describe_fleet_history


def test_history_error_subtypes_become_codes() -> None:
    events = [
        {"EventSubType": "spotInstanceCountLimitExceeded", "EventDescription": "limit reached"},
        {"EventSubType": "iamFleetRoleInvalid", "EventDescription": "Unsupported role"},
        {"EventDescription": "launch failed: InsufficientInstanceCapacity: none"},
    ]
    info = FleetInfo(fleet_id="sfr-1", api="SpotFleet", state="active", activity="error")
    found = _history_errors(lambda _: _History(events), info, None)
    assert found.codes == (
        "MaxSpotInstanceCountExceeded",
        "iamFleetRoleInvalid",
        "InsufficientInstanceCapacity",
    )
    assert fails_over(OhfError(message="", code=leading_code(found.codes)))


class _Activities:
    def __init__(self, messages: list[str]) -> None:
        self.messages = messages

    def describe_scaling_activities(self, **_: Any) -> dict[str, Any]:
        return {
            "Activities": [
                {"AutoScalingGroupName": "g", "StatusCode": "Failed", "StatusMessage": m}
                for m in self.messages
            ]
        }


def test_failed_scaling_activities_name_codes_only_where_aws_writes_them() -> None:
    messages = [
        "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot "
        "capacity available that matches your request. Launching EC2 instance failed.",
        "The requested configuration is Unsupported for this group. Launching EC2 instance failed.",
    ]
    reasons, codes = _scaling_failures(lambda _: _Activities(messages), {"g"})["g"]
    assert reasons == tuple(messages)
    assert codes == ("InsufficientInstanceCapacity",)


# --- the core decides by the codes it was given ------------------------------------------------


def test_a_stopped_fleet_keeps_awss_codes_on_its_request() -> None:
    running = fleet_part("running", fleet_done=False, message="", machine_count=4)
    info = FleetInfo(
        fleet_id="fleet-1",
        api="EC2Fleet",
        state="active",
        activity="error",
        errors=("InvalidParameterValue: Unsupported tenancy",),
        codes=("InvalidParameterValue",),
    )
    judged, _ = fleet_verdict(running, info)
    assert judged.fleet_done
    assert judged.error_codes == ("InvalidParameterValue",)
    assert "Unsupported tenancy" in judged.message


@pytest.mark.parametrize(
    ("codes", "message", "spills"),
    [
        # The code says capacity: the shortfall moves to the next provider.
        (("Unsupported",), "fleet-1 stopped short: Unsupported: not in this zone", True),
        # The code says something else, whatever the text contains.
        (("InvalidParameterValue",), "fleet-1 stopped short: " + UNRELATED[1], False),
        # A request recorded before codes were kept: its text, read for whole codes only.
        ((), "fleet-1 stopped short: " + UNRELATED[0], False),
        ((), "fleet-1 stopped short: InsufficientInstanceCapacity: none left", True),
    ],
)
def test_spill_over_follows_the_fleets_codes(
    codes: tuple[str, ...], message: str, spills: bool
) -> None:
    after = fleet_part("complete_with_error", message=message, error_codes=codes)
    state = spilled(fleet_part("running"), after)
    assert ("req-1.2" in state.requests) is spills


# --- the fake cloud gives the same codes -------------------------------------------------------


def test_the_fake_cloud_carries_pool_error_codes_to_the_request(tmp_path: Any) -> None:
    from ohf.effects import fake, store
    from ohf.model import Template
    from ohf.testing import call, fake_provider

    template = Template(
        template_id="F",
        max_number=8,
        image_id="ami-0fa1ce0000000001",
        vm_types={"c5.large": 1},
        provider_api="EC2Fleet",
        fleet_type="request",
    )
    provider = fake_provider([template], tmp_path)
    provider.ref.cloud = fake.exhaust(provider.ref.cloud, "c5.large")
    code, asked = call(
        provider, "requestMachines", {"template": {"templateId": "F", "machineCount": 2}}
    )
    assert code == 0, asked
    rid = asked["requestId"]
    provider.ref.cloud = msgspec.structs.replace(
        provider.ref.cloud, now=provider.ref.cloud.now + 30
    )
    code, polled = call(provider, "getRequestStatus", {"requests": [{"requestId": rid}]})
    assert code == 0, polled
    request = store.read(provider.shell.settings).unwrap().requests[rid]
    assert request.error_codes == ("InsufficientInstanceCapacity",)
    assert polled["requests"][0]["status"] == "complete_with_error"
