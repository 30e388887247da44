"""DescribeInstances pages read as they stream in give exactly the observations botocore's
parse gives, page by page, and hold one instance at a time.

Pages come from moto (in-process): instances on demand and spot, tagged and not, running and
terminated (with a state reason), with volumes; the same XML pretty-printed and in AWS's own
namespace (with its trailing slash) reads the same.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any
from xml.dom import minidom

import pytest
from returns.result import Success

from ohf.config import AwsConfig
from ohf.effects.aws import client_getter, instance_pages, make_interpreter
from ohf.effects.aws import instances as aws_instances
from ohf.effects.aws.instances import instance_of
from ohf.intents import DescribeInstances
from ohf.model import REQUEST_TAG, TEMPLATE_TAG
from tests.conftest import REGION

EIGHT = 8  # instances in the fixture's cloud


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An ohf EC2 client in moto holding a mix of instances, two requests' worth."""
    from moto import mock_aws

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        client = client_getter(AwsConfig(region=REGION), None)("ec2")
        image = client.describe_images(Owners=["self"])["Images"]  # noqa: F841 (warm-up)
        import boto3

        raw = boto3.client("ec2", region_name=REGION)
        ami = raw.register_image(Name="node", RootDeviceName="/dev/sda1")["ImageId"]
        # Six reservations (one per call), eight instances.
        for request, market, count in (("req-a", None, 2), ("req-b", "spot", 1)) * 2:
            tags = [{"Key": REQUEST_TAG, "Value": request}, {"Key": TEMPLATE_TAG, "Value": "t"}]
            raw.run_instances(
                ImageId=ami,
                InstanceType="c5.large",
                MinCount=count,
                MaxCount=count,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
                **({"InstanceMarketOptions": {"MarketType": market}} if market else {}),
            )
        for _ in range(2):
            raw.run_instances(ImageId=ami, MinCount=1, MaxCount=1)  # untagged, moto's type
        gone = raw.describe_instances()["Reservations"][0]["Instances"][0]["InstanceId"]
        raw.terminate_instances(InstanceIds=[gone])
        yield client


def _pages(client: Any, **params: Any) -> list[tuple[bytes, dict[str, Any]]]:
    """(raw XML, botocore's parse) of every page of a DescribeInstances pagination."""
    bodies: list[bytes] = []
    client.meta.events.register(
        "after-call.ec2.DescribeInstances",
        lambda http_response, **_: bodies.append(http_response.content),
    )
    parsed = list(client.get_paginator("describe_instances").paginate(**params))
    return list(zip(bodies, parsed, strict=True))


def _names(client: Any) -> Any:
    return instance_pages._Names(client.meta.service_model.operation_model("DescribeInstances"))


def _botocores(page: dict[str, Any]) -> list[Any]:
    return [instance_of(i) for r in page["Reservations"] for i in r["Instances"]]


def _as_aws_writes_it(body: bytes) -> bytes:
    """The page as AWS sends it: pretty-printed, in the namespace with its trailing slash."""
    pretty = minidom.parseString(body).toprettyxml(indent="  ").encode()
    return pretty.replace(b'/doc/2016-11-15"', b'/doc/2016-11-15/"')


def test_a_streamed_page_reads_as_botocore_reads_it(ec2: Any) -> None:
    ((body, parsed),) = _pages(ec2)
    expected = _botocores(parsed)
    assert len(expected) == EIGHT
    assert {i.lifecycle for i in expected} == {"spot", "on-demand"}
    assert {i.state for i in expected} == {"running", "terminated"}
    assert all(i.launch_time for i in expected) and any(i.volume_ids for i in expected)

    for text in (body, _as_aws_writes_it(body)):
        found, top = instance_pages.read_page(text, _names(ec2))
        assert found == expected
        assert top["requestId"] == parsed["ResponseMetadata"]["RequestId"]


def test_streamed_pages_keep_the_next_token_so_pagination_goes_on(
    ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aws_instances, "PAGE_SIZE", 5)  # moto pages by reservation: 6 of them
    ((_, everything),) = _pages(ec2)
    ids = [i.instance_id for i in _botocores(everything)]
    filters = [{"Name": "instance-id", "Values": ids}]
    pages = _pages(ec2, Filters=filters, PaginationConfig={"PageSize": 5})
    assert len(pages) > 1
    interpret = make_interpreter(AwsConfig(region=REGION), clients=lambda _: ec2)
    calls: list[str] = []
    ec2.meta.events.register("before-call", lambda model, **_: calls.append(model.name))

    answer = interpret(DescribeInstances(instance_ids=tuple(ids)))

    assert isinstance(answer, Success)
    by_id = lambda i: i.instance_id  # noqa: E731
    expected = [i for _, page in pages for i in _botocores(page)]
    assert sorted(answer.unwrap(), key=by_id) == sorted(expected, key=by_id)
    assert calls == ["DescribeInstances"] * len(pages)


def test_only_the_describe_that_asks_reads_pages_as_they_stream(ec2: Any) -> None:
    # The same client answered outside `streaming()` gives botocore's whole answer.
    reservations = ec2.describe_instances()["Reservations"]
    assert sum(len(r["Instances"]) for r in reservations) == EIGHT
    with instance_pages.streaming():
        page = ec2.describe_instances()
    assert page["Reservations"] == []
    assert len(page[instance_pages.STREAMED]) == EIGHT


def test_a_page_that_does_not_parse_is_left_to_botocore(ec2: Any) -> None:
    ((body, _),) = _pages(ec2)
    import xml.etree.ElementTree as ET

    with pytest.raises(ET.ParseError):  # the handler then leaves the page to botocore
        instance_pages.read_page(body[: len(body) // 2] + b"</oops>", _names(ec2))


def test_reading_a_page_holds_one_instance_at_a_time(ec2: Any) -> None:
    ((body, _),) = _pages(ec2)
    many = _many(body, 300)
    names = _names(ec2)
    tracemalloc.start()
    found, _ = instance_pages.read_page(many, names)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(found) == EIGHT * 300
    # The page's XML tree would take several times the page; this holds a fraction of it.
    assert peak < len(many) / 2


def _many(body: bytes, times: int) -> bytes:
    """The page with its reservations repeated `times` times."""
    start = body.index(b"<reservationSet>") + len(b"<reservationSet>")
    end = body.index(b"</reservationSet>")
    return body[:start] + body[start:end] * times + body[end:]
