"""InstanceID tags: one CreateTags per instance, naming the instance and its volumes."""

from __future__ import annotations

from functools import partial

from returns.result import Success

from ohf.effects.aws.clients import ClientGetter
from ohf.effects.aws.errors import Answer, _timed
from ohf.intents import TagInstanceIds
from ohf.model import INSTANCE_ID_TAG

# Refusals that concern one instance only (it or a volume is gone): the others are still tried.
_ONE_RESOURCE = ("InvalidInstanceID", "InvalidVolume", "InvalidID")


def _tag_instance_ids(clients: ClientGetter, intent: TagInstanceIds) -> Answer:
    """Tag each instance and its volumes with its own id.

    CreateTags gives all the resources of one call the same tags, and each instance's value is
    its own id, so it takes one call per instance (its volumes in the same call): fewer is
    impossible. Transient errors are retried by the client; any other refusal but "this
    resource is gone" stops the batch, as it would refuse the rest too.
    """
    ec2 = clients("ec2")
    done: dict[str, str] = {}
    for instance_id, volume_ids in intent.instances:
        answer = _timed(
            "CreateTags",
            partial(
                ec2.create_tags,
                Resources=[instance_id, *volume_ids],
                Tags=[{"Key": INSTANCE_ID_TAG, "Value": instance_id}],
            ),
        )
        if isinstance(answer, Success):
            done[instance_id] = ""
            continue
        error = answer.failure()
        done[instance_id] = error.message
        if not error.code.startswith(_ONE_RESOURCE):
            break
    return Success(done)
