"""Public hypothesis strategies for ohf: templates, HF messages, state and fake-cloud events.

For property tests of ohf and of tools built on it. Importing this module needs `hypothesis`
(a test dependency, not a runtime one). Every strategy draws small values on purpose (a few
templates, counts up to 50, a handful of machines) so that stateful tests stay fast.

Templates are always valid for `ohf.templates.check_template`, and launchable by the fake
cloud when it knows the SSM paths used here: `fake.new_cloud(parameters=SSM_IMAGES)`.

Every name is importable from here; the submodules group them: `values` (ids, tags, templates,
HF inputs), `records` (instances, machines, requests on every provider API, states), `history`
(state changes, aged states), `clouds` (the cloud's own events) and `providers` (several
`[[providers]]` and states spread over them).
"""

from __future__ import annotations

from ohf.strategies.clouds import (
    FLEET_OPERATIONS,
    CloudEvent,
    EventKind,
    FleetEvent,
    FleetEventKind,
    apply_event,
    apply_fleet_event,
    cloud_events,
    event_target,
    fleet_events,
    spot_target,
)
from ohf.strategies.history import aged_states, changed_states, state_changes, state_histories
from ohf.strategies.providers import (
    PROVIDER_DEFAULTS,
    REGIONS,
    placement_states,
    provider_configs,
    provider_names,
)
from ohf.strategies.records import (
    FLEET_TYPES,
    PROVIDER_APIS,
    fleet_ids,
    fleet_requests,
    instances,
    launch_template_ids,
    machines,
    requests,
    return_requests,
    states,
)
from ohf.strategies.values import (
    AMI_IDS,
    HF_CALLS,
    INSTANCE_STATES,
    INSTANCE_TYPES,
    SSM_IMAGES,
    extra_keys,
    format_tags,
    hf_bodies,
    ibm_template_dicts,
    image_ids,
    instance_ids,
    json_scalars,
    machine_refs,
    request_ids,
    request_machines_inputs,
    tag_keys,
    tag_pairs,
    tag_values,
    template_ids,
    template_lists,
    templates,
    vm_types,
)

__all__ = [
    "AMI_IDS",
    "FLEET_OPERATIONS",
    "FLEET_TYPES",
    "HF_CALLS",
    "INSTANCE_STATES",
    "INSTANCE_TYPES",
    "PROVIDER_APIS",
    "PROVIDER_DEFAULTS",
    "REGIONS",
    "SSM_IMAGES",
    "CloudEvent",
    "EventKind",
    "FleetEvent",
    "FleetEventKind",
    "aged_states",
    "apply_event",
    "apply_fleet_event",
    "changed_states",
    "cloud_events",
    "event_target",
    "extra_keys",
    "fleet_events",
    "fleet_ids",
    "fleet_requests",
    "format_tags",
    "hf_bodies",
    "ibm_template_dicts",
    "image_ids",
    "instance_ids",
    "instances",
    "json_scalars",
    "launch_template_ids",
    "machine_refs",
    "machines",
    "placement_states",
    "provider_configs",
    "provider_names",
    "request_ids",
    "request_machines_inputs",
    "requests",
    "return_requests",
    "spot_target",
    "state_changes",
    "state_histories",
    "states",
    "tag_keys",
    "tag_pairs",
    "tag_values",
    "template_ids",
    "template_lists",
    "templates",
    "vm_types",
]
