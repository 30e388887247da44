"""The AWS interpreter: performs cloud intents against AWS (or an AWS-compatible endpoint).

botocore is imported lazily, on the first intent that needs AWS, so calls that do not talk to
AWS (getAvailableTemplates, bad input) never pay for it; boto3 is never imported (clients are
built through botocore's session on service models cut to what ohf calls: `models`). Every AWS
exception becomes a `Failure`.
Instances are launched with RunInstances, EC2 Fleet (CreateFleet), Spot Fleet
(RequestSpotFleet) or an Auto Scaling group; fleets and groups are described in batches, one
call per API for any number of them.

Transient errors (throttling, AWS 5xx, no connection, timeouts) are retried here, per AWS call,
with exponential backoff and full jitter, within `[aws] max_attempts` and a time budget per HF
call (`[aws] retry_budget`); botocore itself does not retry them, so the two never multiply.
Every call ohf retries is idempotent: launches and creations carry a ClientToken or a name of
ohf's own, describes read, terminations and capacity changes set absolute values. Capacity,
quota and permission errors are never retried: the core reports them.

Modules: `clients` (sessions, assumed roles, botocore's config), `models` (cut service models,
cached), `errors`, `retries`, one per
family of intents (`instances`, `launch_templates`, `create_fleets`, `describe_fleets`,
`change_fleets`, `spot_signals`, `tags`), `credential_script` (IBM's AWS_CREDENTIAL_SCRIPT,
refreshed before expiry) and `interpreter` (`make_interpreter`: the dispatch table). The names
below are imported from their module on first use: importing one never imports the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ohf.effects.aws.clients import (
        CallHook,
        ClientGetter,
        assume_role_params,
        assumed_credentials,
        assumed_session,
        client_getter,
        source_session,
        warm,
    )
    from ohf.effects.aws.create_fleets import (
        ec2_fleet_params,
        fleet_launch,
        group_params,
        spot_fleet_config,
    )
    from ohf.effects.aws.describe_fleets import (
        ec2_fleet_info,
        group_info,
        spot_fleet_info,
    )
    from ohf.effects.aws.errors import (
        Answer,
        iam_action,
    )
    from ohf.effects.aws.instances import (
        chunks,
        instance_of,
        network_interfaces,
        run_instances_params,
    )
    from ohf.effects.aws.interpreter import (
        make_interpreter,
    )
    from ohf.effects.aws.launch_templates import (
        aws_tags,
        launch_template_data,
    )
    from ohf.effects.aws.retries import (
        Retries,
        backoff,
        is_transient_exception,
        retried,
        retrying,
    )
    from ohf.effects.aws.spot_signals import (
        spot_signal,
    )

# name -> the module of this package that defines it
_HOMES = {
    "Answer": "errors",
    "CallHook": "clients",
    "ClientGetter": "clients",
    "Retries": "retries",
    "assume_role_params": "clients",
    "assumed_credentials": "clients",
    "assumed_session": "clients",
    "aws_tags": "launch_templates",
    "backoff": "retries",
    "chunks": "instances",
    "client_getter": "clients",
    "ec2_fleet_info": "describe_fleets",
    "ec2_fleet_params": "create_fleets",
    "fleet_launch": "create_fleets",
    "group_info": "describe_fleets",
    "group_params": "create_fleets",
    "iam_action": "errors",
    "instance_of": "instances",
    "is_transient_exception": "retries",
    "launch_template_data": "launch_templates",
    "make_interpreter": "interpreter",
    "network_interfaces": "instances",
    "retried": "retries",
    "retrying": "retries",
    "run_instances_params": "instances",
    "source_session": "clients",
    "spot_fleet_config": "create_fleets",
    "spot_fleet_info": "describe_fleets",
    "spot_signal": "spot_signals",
    "warm": "clients",
}


__all__ = [
    "Answer",
    "CallHook",
    "ClientGetter",
    "Retries",
    "assume_role_params",
    "assumed_credentials",
    "assumed_session",
    "aws_tags",
    "backoff",
    "chunks",
    "client_getter",
    "ec2_fleet_info",
    "ec2_fleet_params",
    "fleet_launch",
    "group_info",
    "group_params",
    "iam_action",
    "instance_of",
    "is_transient_exception",
    "launch_template_data",
    "make_interpreter",
    "network_interfaces",
    "retried",
    "retrying",
    "run_instances_params",
    "source_session",
    "spot_fleet_config",
    "spot_fleet_info",
    "spot_signal",
    "warm",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ohf.effects.aws' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ohf.effects.aws.{home}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value
