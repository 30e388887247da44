"""moto_server for the benchmark, with three of moto 5.2.5's departures from EC2 put right.

- RunInstances: moto launches `MinCount` instances. EC2 launches as many as it can up to
  `MaxCount`, which, with capacity to spare (the benchmark's case), is `MaxCount`. ohf asks
  `MinCount = MaxCount = n`; Open Resource Broker asks `MinCount = 1, MaxCount = n` and would hold
  one machine per request on plain moto.
- DescribeInstances `MaxResults`: moto counts reservations, EC2 counts instances. With 100
  reservations of 50 instances, a "page of 1,000" is all 5,000 instances in one answer, which
  moto takes longer to serialise than a client's read timeout. Patched: a page holds whole
  reservations up to `MaxResults` instances (at least one reservation).
- Tags: moto finds one resource's tags by matching every tag of every resource against the id,
  once or twice per instance it describes, so describing n instances costs n x (all tags): 80 s
  for 5,000 instances. Patched: a direct lookup when the filter is one plain resource id, with
  the same answer.

Same arguments as `moto_server` (`-H HOST -p PORT`).
"""

from __future__ import annotations

import sys
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models.tags import TagBackend
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
from moto.server import main

_original_run_instances = InstanceResponse.run_instances


def _run_instances_up_to_max(self: Any) -> Any:
    max_count = self._get_param("MaxCount")
    if max_count is None:
        return _original_run_instances(self)
    get_param = self._get_param

    def with_max(name: str, if_none: Any = None) -> Any:
        return max_count if name == "MinCount" else get_param(name, if_none)

    self._get_param = with_max
    try:
        return _original_run_instances(self)
    finally:
        del self._get_param


def _describe_instances_paged_by_instance(self: Any) -> Any:
    if "MaxResults" not in self.data or "InstanceId.1" in self.data:
        return _original_describe_instances(self)  # moto's answer, or its parameter error
    self.error_on_dryrun()
    reservations = self.ec2_backend.describe_instances(filters=self._filters_from_querystring())
    token = self._get_param("NextToken")
    start = [r.id for r in reservations].index(token) + 1 if token else 0
    limit = int(self._get_param("MaxResults"))
    page: list[Any] = []
    held = 0
    for reservation in reservations[start:]:
        if page and held + len(reservation.instances) > limit:
            break
        page.append(reservation)
        held += len(reservation.instances)
    more = start + len(page) < len(reservations)
    return ActionResult({"Reservations": page, "NextToken": page[-1].id if more else None})


def _describe_tags_of_one(self: Any, filters: dict[str, list[str]] | None = None) -> Any:
    ids = (filters or {}).get("resource-id", [])
    if list(filters or {}) != ["resource-id"] or len(ids) != 1 or any(c in ids[0] for c in "*?["):
        return _original_describe_tags(self, filters)
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(ids[0]), "")
    return [
        {"resource_id": ids[0], "key": key, "value": value, "resource_type": kind}
        for key, value in self.tags.get(ids[0], {}).items()
    ]


_original_describe_tags = TagBackend.describe_tags
_original_describe_instances = InstanceResponse.describe_instances
TagBackend.describe_tags = _describe_tags_of_one  # type: ignore[method-assign]
InstanceResponse.run_instances = _run_instances_up_to_max  # type: ignore[method-assign]
InstanceResponse.describe_instances = _describe_instances_paged_by_instance  # type: ignore[method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
