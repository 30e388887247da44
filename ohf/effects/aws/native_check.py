"""Native fragments checked offline against botocore's model of each AWS operation's input.

`ohf validate` runs this (never an HF call: it loads botocore's service models, a few hundred
milliseconds). Each template's request is built as ohf would send it for a request of one
machine, its fragment merged in by the interpreter's own code, and handed to botocore's
`ParamValidator` with the operation's input shape: a misspelt key, a wrong type or a missing
member is caught before any request, with its key path in the message. botocore does not
check enum values; AWS does, at the request.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import msgspec
from returns.result import Failure, Result, Success

from ohf.acquire import base_spec
from ohf.effects.aws.create_fleets import ec2_fleet_params, group_params, spot_fleet_config
from ohf.effects.aws.instances import run_instances_params
from ohf.effects.aws.launch_templates import launch_template_data
from ohf.fleets import fleet_spec
from ohf.model import FleetApi, OhfError, Template
from ohf.native import Kind, fragments
from ohf.templates import instance_types, provider_api, subnets

# Stand-ins for what only a request knows; any value of the right type checks the same.
EXAMPLE_REQUEST = "req-validate"
EXAMPLE_LAUNCH_TEMPLATE = "lt-0123456789abcdef0"
EXAMPLE_ROOT_DEVICE = "/dev/xvda"
# botocore's report names a location after these words ("input" is the whole request).
_LOCATION = re.compile(
    r"^(Unknown parameter in|Missing required parameter in|"
    r"Invalid (?:type|value|length) for parameter|Invalid parameter) (\S+?)(?=[:,]| must)"
)


@cache
def _shape(service: str, operation: str, member: str | None = None) -> Any:
    """The input shape of an operation (or of one member of it), from botocore's bundled model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    return shape.members[member] if member else shape


def _located(line: str, kind: Kind) -> str:
    """botocore's report line with its location named as the template key path."""
    found = _LOCATION.match(line)
    if found is None:
        return f"{kind}: {line}"
    where = kind if found.group(2) == "input" else f"{kind}.{found.group(2)}"
    return f"{found.group(1)} {where}{line[found.end() :]}"


def report(params: dict[str, Any], shape: Any, kind: Kind) -> list[str]:
    """botocore's verdict on `params` for `shape`, one line per problem, paths from `kind`."""
    from botocore.validate import ParamValidator

    checked = ParamValidator().validate(params, shape)
    if not checked.has_errors():
        return []
    return [_located(line, kind) for line in checked.generate_report().splitlines() if line]


def _launch_spec(template: Template) -> Any:
    spec = base_spec(template, EXAMPLE_REQUEST, template.image_id, template.user_data)
    types = instance_types(template)
    places = subnets(template)
    return msgspec.structs.replace(
        spec,
        instance_type=types[0][0] if types else None,
        subnet_id=places[0] if places else None,
    )


def _fleet_request(template: Template, api: FleetApi) -> tuple[dict[str, Any], Any]:
    """The fleet API's parameters for `template` (fragment merged) and their input shape."""
    spec = fleet_spec(
        template,
        api,
        request_id=EXAMPLE_REQUEST,
        launch_template_id=template.launch_template_id or EXAMPLE_LAUNCH_TEMPLATE,
        launch_template_version="$Latest",
        image_override=None,
        target=1,
        now=0,
    )
    if api == "SpotFleet":
        return spot_fleet_config(spec), _shape("ec2", "RequestSpotFleet", "SpotFleetRequestConfig")
    if api == "ASG":
        return group_params(spec), _shape("autoscaling", "CreateAutoScalingGroup")
    return ec2_fleet_params(spec), _shape("ec2", "CreateFleet")


def fragment_report(template: Template) -> list[str]:
    """Every problem botocore finds in the requests the template's fragments are merged into."""
    found: list[str] = []
    for kind, _ in fragments(template):
        if kind == "runInstances":
            params = run_instances_params(_launch_spec(template), EXAMPLE_ROOT_DEVICE)
            found += report(params, _shape("ec2", "RunInstances"), kind)
        elif kind == "launchTemplateData":
            data = launch_template_data(_launch_spec(template), EXAMPLE_ROOT_DEVICE)
            found += report(data, _shape("ec2", "CreateLaunchTemplate", "LaunchTemplateData"), kind)
        elif (api := provider_api(template)) != "RunInstances":
            # (`fleet` on a RunInstances template is refused when the config loads.)
            params, shape = _fleet_request(template, api)
            found += report(params, shape, kind)
    return found


def check_native(template: Template) -> Result[Template, OhfError]:
    """The template, or a Failure naming each key path of its fragments botocore refuses."""
    found = fragment_report(template)
    if not found:
        return Success(template)
    where = f"template {template.template_id!r}"
    return Failure(OhfError(message=f"{where}: {'; '.join(found)}", code="config"))
