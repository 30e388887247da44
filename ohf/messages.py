"""Host Factory's input and output documents, with HF's camelCase names, and nothing else."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ohf.model import MachineResult, RequestStatus

# EC2 states as HF knows them (the internal "gone" is reported as terminated).
HfMachineState = Literal["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]


class _HF(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of every HF document: immutable, keyword-only, camelCase on the wire."""


class TemplateAsk(_HF, frozen=True, kw_only=True):
    """The `template` object of a requestMachines input."""

    template_id: Annotated[str, Meta(min_length=1)]
    machine_count: Annotated[int, Meta(ge=1)]


class RequestMachinesIn(_HF, frozen=True, kw_only=True):
    """requestMachines input."""

    template: TemplateAsk


class RequestRef(_HF, frozen=True, kw_only=True):
    """A request id as HF passes it to getRequestStatus."""

    request_id: Annotated[str, Meta(min_length=1)]


class RequestStatusIn(_HF, frozen=True, kw_only=True):
    """getRequestStatus input."""

    requests: list[RequestRef]


class MachineRef(_HF, frozen=True, kw_only=True):
    """A machine as HF names it in requestReturnMachines and getReturnRequests."""

    name: str = ""
    machine_id: str = ""


class ReturnMachinesIn(_HF, frozen=True, kw_only=True):
    """requestReturnMachines input."""

    machines: Annotated[list[MachineRef], Meta(min_length=1)]


class ReturnRequestsIn(_HF, frozen=True, kw_only=True):
    """getReturnRequests input: the hosts HF believes it holds (may be empty)."""

    machines: list[MachineRef] = []


class TemplatesIn(_HF, frozen=True, kw_only=True):
    """getAvailableTemplates input: HF sends `{}`; anything in it is ignored."""


class TemplateOut(_HF, frozen=True, kw_only=True):
    """One template as reported to HF (other template keys are echoed beside these)."""

    template_id: str
    max_number: int
    available_number: int
    attributes: dict[str, tuple[str, str]]


class TemplatesOut(_HF, frozen=True, kw_only=True):
    """getAvailableTemplates output."""

    templates: list[dict[str, Any]]
    message: str = ""


class RequestAccepted(_HF, frozen=True, kw_only=True):
    """requestMachines and requestReturnMachines output."""

    request_id: str
    message: str = ""


class MachineOut(_HF, frozen=True, kw_only=True):
    """One machine in a getRequestStatus answer."""

    machine_id: str
    name: str
    result: MachineResult
    status: HfMachineState
    private_ip_address: str | None
    public_ip_address: str | None
    launchtime: int
    message: str = ""


class RequestStatusOut(_HF, frozen=True, kw_only=True):
    """One request in a getRequestStatus answer."""

    request_id: str
    status: RequestStatus
    machines: list[MachineOut]
    message: str = ""


class RequestsStatusOut(_HF, frozen=True, kw_only=True):
    """getRequestStatus output."""

    requests: list[RequestStatusOut]
    message: str = ""


class ReclaimOut(_HF, frozen=True, kw_only=True):
    """One machine the cloud is taking back, in a getReturnRequests answer."""

    machine: str
    machine_id: str
    grace_period: int = 0


class ReturnRequestsOut(_HF, frozen=True, kw_only=True):
    """getReturnRequests output."""

    requests: list[ReclaimOut]
    status: str = "complete"
    message: str = ""


class ErrorOut(_HF, frozen=True, kw_only=True):
    """What every failed call prints: HF reads `message`."""

    message: str


INPUTS: dict[str, type[msgspec.Struct]] = {
    "getAvailableTemplates": TemplatesIn,
    "requestMachines": RequestMachinesIn,
    "getRequestStatus": RequestStatusIn,
    "requestReturnMachines": ReturnMachinesIn,
    "getReturnRequests": ReturnRequestsIn,
}

OUTPUTS: dict[str, type[msgspec.Struct]] = {
    "getAvailableTemplates": TemplatesOut,
    "requestMachines": RequestAccepted,
    "getRequestStatus": RequestsStatusOut,
    "requestReturnMachines": RequestAccepted,
    "getReturnRequests": ReturnRequestsOut,
}
