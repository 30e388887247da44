"""DescribeInstances pages read as they stream in: each instance becomes an `Instance` when its
XML element ends, and the element is dropped at once.

botocore parses a page by building the XML tree of the whole page (1,000 instances: ~3 MB of
XML, ~11 MiB of tree) and then a dict of every member of every instance (dozens, most of which
ohf never reads: network interfaces, CPU options, ...), converting each timestamp with dateutil
on the way; that costs a status poll of 1,000 machines more memory and CPU than all the rest of
the call. Here a page is read by an incremental parser instead, keeping the dozen members
`instance_of` reads, and botocore is handed a page holding only its request id and next token
(so pagination, logging and retries work as before). The XML names are botocore's own
(the `locationName`s of its DescribeInstances model): a model that does not name them as
expected, an error answer, or any page that does not read leaves botocore to parse the page
itself, and `instance_of` reads its dicts as before.

Only `streaming()` turns this on, for the calling thread: other users of the same client get
botocore's usual answer.
"""

from __future__ import annotations

import contextlib
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

from ohf.effects.aws.instances import instance_fields
from ohf.model import Instance

# The page key under which streamed observations reach the paginator's pages.
STREAMED = "OhfInstances"
_CHUNK = 1 << 16
_local = threading.local()


@contextlib.contextmanager
def streaming() -> Iterator[None]:
    """Within the block, this thread's DescribeInstances pages are read as they stream in."""
    _local.on = True
    try:
        yield
    finally:
        _local.on = False


class _Names:
    """The XML names of the members read, from botocore's model of DescribeInstances."""

    def __init__(self, operation: Any) -> None:
        result = operation.output_shape
        reservation = result.members["Reservations"].member
        instance = reservation.members["Instances"].member
        members = instance.members
        self.reservations = _wire(result.members["Reservations"])
        self.instances = _wire(reservation.members["Instances"])
        self.next_token = _wire(result.members["NextToken"])
        self.instance = {name: _wire(members[name]) for name in _READ}
        self.state_name = _wire(members["State"].members["Name"])
        self.reason = _wire(members["StateReason"].members["Message"])
        tag = members["Tags"].member
        self.tag = (_wire(tag.members["Key"]), _wire(tag.members["Value"]))
        ebs = members["BlockDeviceMappings"].member.members["Ebs"]
        self.ebs = (_wire(ebs), _wire(ebs.members["VolumeId"]))


_READ = (
    "InstanceId",
    "State",
    "InstanceType",
    "PrivateIpAddress",
    "PublicIpAddress",
    "PrivateDnsName",
    "LaunchTime",
    "Tags",
    "InstanceLifecycle",
    "StateReason",
    "BlockDeviceMappings",
)


def _wire(shape: Any) -> str:
    return str(shape.serialization.get("name") or shape.name)


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(element: ET.Element) -> dict[str, ET.Element]:
    return {_local_name(child.tag): child for child in element}


def _text(element: ET.Element | None) -> str | None:
    return element.text if element is not None and element.text else None


def _items(element: ET.Element | None) -> list[dict[str, ET.Element]]:
    return [] if element is None else [_children(item) for item in element]


def _epoch(text: str | None) -> int:
    if not text:
        return 0
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def instance_from_xml(element: ET.Element, names: _Names) -> Instance:
    """The `Instance` of one `instancesSet/item` element (what `instance_of` makes of
    botocore's dict of it)."""
    got = _children(element)
    wire = names.instance

    def text(member: str) -> str | None:
        return _text(got.get(wire[member]))

    state = got.get(wire["State"])
    reason = got.get(wire["StateReason"])
    key, value = names.tag
    ebs, volume = names.ebs
    return instance_fields(
        instance_id=text("InstanceId") or "",
        state=_text(_children(state).get(names.state_name)) if state is not None else None,
        instance_type=text("InstanceType"),
        private_ip=text("PrivateIpAddress"),
        public_ip=text("PublicIpAddress"),
        private_dns=text("PrivateDnsName"),
        launch_time=_epoch(text("LaunchTime")),
        tags={
            _text(t.get(key)) or "": _text(t.get(value)) or ""
            for t in _items(got.get(wire["Tags"]))
        },
        lifecycle=text("InstanceLifecycle"),
        state_reason=_text(_children(reason).get(names.reason)) if reason is not None else None,
        volume_ids=tuple(
            v
            for mapping in _items(got.get(wire["BlockDeviceMappings"]))
            if (v := _text(_children(mapping[ebs]).get(volume) if ebs in mapping else None))
        ),
    )


def read_page(body: bytes, names: _Names) -> tuple[list[Instance], dict[str, str]]:
    """The instances of a DescribeInstances page, and its top-level request id and next token
    (by XML name); each instance's element is freed as soon as it is read."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    path: list[str] = []
    found: list[Instance] = []
    top: dict[str, str] = {}
    instance_path = [names.reservations, "item", names.instances, "item"]
    for start in range(0, len(body), _CHUNK):
        parser.feed(body[start : start + _CHUNK])
        for pair in parser.read_events():
            event, element = cast(tuple[str, ET.Element], pair)  # start/end: elements
            if event == "start":
                path.append(_local_name(element.tag))
                continue
            inner = path[1:]
            if inner == instance_path:
                found.append(instance_from_xml(element, names))
                element.clear()
            elif inner[:2] == [names.reservations, "item"] and len(inner) == 2:
                element.clear()  # a reservation read: its instances are gone already
            elif len(inner) == 1 and element.text:
                top[inner[0]] = element.text
            path.pop()
    parser.close()
    return found, top


def _minimal_page(top: dict[str, str], names: _Names) -> bytes:
    """A page botocore reads as no reservations, with the request id and next token kept."""
    inner = "".join(
        f"<{name}>{_escape(top[name])}</{name}>"
        for name in ("requestId", names.next_token)
        if name in top
    )
    root = "DescribeInstancesResponse"
    return f"<{root}><{names.reservations}/>{inner}</{root}>".encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def register(client: Any) -> None:
    """Read `client`'s DescribeInstances pages as they stream in, within `streaming()`."""
    try:
        names = _Names(client.meta.service_model.operation_model("DescribeInstances"))
    except (KeyError, AttributeError):
        return  # a model that does not name them as expected: botocore parses every page

    def on_page(
        response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
    ) -> None:
        body = response_dict.get("body")
        if not getattr(_local, "on", False) or response_dict.get("status_code") != 200:
            return
        if not isinstance(body, bytes):
            return
        try:
            instances, top = read_page(body, names)
        except (ET.ParseError, ValueError, KeyError):
            return  # botocore parses it, and reports what is wrong with it
        customized_response_dict[STREAMED] = instances
        response_dict["body"] = _minimal_page(top, names)

    client.meta.events.register("before-parse.ec2.DescribeInstances", on_page)
