"""Launch templates in the fake cloud: created once per name, deleted by id."""

from __future__ import annotations

import msgspec
from returns.result import Success

from ohf.effects.fake.cloud import Answer, FakeCloud, FakeLaunchTemplate, _next_serial
from ohf.intents import CreateLaunchTemplate, DeleteLaunchTemplate


def _named_template(cloud: FakeCloud, name: str) -> str | None:
    return next((i for i, lt in cloud.launch_templates.items() if lt.name == name), None)


def _create_launch_template(
    cloud: FakeCloud, intent: CreateLaunchTemplate
) -> tuple[FakeCloud, Answer]:
    named = _named_template(cloud, intent.name)
    if named is not None:
        # AWS: InvalidLaunchTemplateName.AlreadyExistsException; the boto3 interpreter takes
        # it for a retry after a lost answer (the name is ohf's) and looks the template up.
        return cloud, Success(named)
    cloud, serial = _next_serial(cloud)
    lt_id = f"lt-{serial:017x}"
    made = FakeLaunchTemplate(launch_template_id=lt_id, name=intent.name, spec=intent.spec)
    return (
        msgspec.structs.replace(cloud, launch_templates={**cloud.launch_templates, lt_id: made}),
        Success(lt_id),
    )


def _delete_launch_template(
    cloud: FakeCloud, intent: DeleteLaunchTemplate
) -> tuple[FakeCloud, Answer]:
    kept = {i: lt for i, lt in cloud.launch_templates.items() if i != intent.launch_template_id}
    return msgspec.structs.replace(cloud, launch_templates=kept), Success(None)
