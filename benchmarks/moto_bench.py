"""moto_server for the benchmark, with RunInstances launching `MaxCount` as EC2 does.

moto 5.2.5 launches `MinCount` instances. EC2 launches as many as it can up to `MaxCount`, which,
with capacity to spare (the benchmark's case), is `MaxCount`. ohf asks `MinCount = MaxCount = n`;
Open Resource Broker asks `MinCount = 1, MaxCount = n` and would hold one machine per request on
plain moto. Same arguments as `moto_server` (`-H HOST -p PORT`).
"""

from __future__ import annotations

import sys
from typing import Any

from moto.ec2.responses.instances import InstanceResponse
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


InstanceResponse.run_instances = _run_instances_up_to_max  # type: ignore[method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
