"""Launch templates: their data (a `LaunchSpec` less what fleets pick), create and delete."""

from __future__ import annotations

import base64
from functools import partial
from typing import Any

import msgspec
from returns.result import Failure, Success

from ohf.effects.aws.clients import ClientGetter
from ohf.effects.aws.errors import Answer, _timed
from ohf.effects.aws.instances import _root_device, on_interfaces, run_instances_params
from ohf.intents import CreateLaunchTemplate, DeleteLaunchTemplate, LaunchSpec
from ohf.native import merged

LT_NOT_FOUND = frozenset(
    {
        "InvalidLaunchTemplateId.NotFound",
        "InvalidLaunchTemplateId.Malformed",
        "InvalidLaunchTemplateName.NotFoundException",
    }
)
LT_EXISTS = "InvalidLaunchTemplateName.AlreadyExistsException"


def aws_tags(tags: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    """EC2's `[{"Key": k, "Value": v}]` form of (key, value) pairs."""
    return [{"Key": k, "Value": v} for k, v in tags]


def launch_template_data(spec: LaunchSpec, root_device: str | None) -> dict[str, Any]:
    """LaunchTemplateData for `spec`: its RunInstances parameters less counts, type and subnet.

    The fleet or group picks type, subnet and market per override, so those stay out of the
    template (an Auto Scaling group with a mixed instances policy refuses a template that asks
    for spot). User data goes in base64: boto3 encodes it for RunInstances only. The template's
    `launchTemplateData` fragment is merged in last.
    """
    bare = msgspec.structs.replace(
        spec,
        instance_type=None,
        subnet_id=None,
        spot=None,
        launch_template_id=None,
        native_run_instances={},
    )
    params = run_instances_params(bare, root_device)
    for key in ("MinCount", "MaxCount", "ClientToken"):
        params.pop(key, None)
    if spec.user_data is not None:
        params["UserData"] = base64.b64encode(spec.user_data.encode()).decode("ascii")
    return on_interfaces(merged(params, spec.native_launch_template_data))


def _create_launch_template(clients: ClientGetter, intent: CreateLaunchTemplate) -> Answer:
    spec = intent.spec
    root = _root_device(clients, spec.image_id) if spec.root_volume else None
    params: dict[str, Any] = {
        "LaunchTemplateName": intent.name,
        "LaunchTemplateData": launch_template_data(spec, root),
        "ClientToken": spec.client_token,
    }
    if spec.tags:
        params["TagSpecifications"] = [
            {"ResourceType": "launch-template", "Tags": aws_tags(spec.tags)}
        ]
    ec2 = clients("ec2")
    answer = _timed("CreateLaunchTemplate", partial(ec2.create_launch_template, **params))
    if isinstance(answer, Failure) and answer.failure().code == LT_EXISTS:
        # A retry after a lost answer: the name is ohf's (derived from the request id).
        return _timed(
            "DescribeLaunchTemplates",
            partial(ec2.describe_launch_templates, LaunchTemplateNames=[intent.name]),
        ).map(lambda r: str(r["LaunchTemplates"][0]["LaunchTemplateId"]))
    return answer.map(lambda r: str(r["LaunchTemplate"]["LaunchTemplateId"]))


def _delete_launch_template(clients: ClientGetter, intent: DeleteLaunchTemplate) -> Answer:
    answer = _timed(
        "DeleteLaunchTemplate",
        partial(clients("ec2").delete_launch_template, LaunchTemplateId=intent.launch_template_id),
    )
    if isinstance(answer, Failure) and answer.failure().code in LT_NOT_FOUND:
        return Success(None)
    return answer.map(lambda _: None)
