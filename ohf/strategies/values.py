"""Ids, tags, templates and HF input documents: the values every other strategy builds on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from hypothesis import strategies as st

from ohf.messages import RequestMachinesIn, TemplateAsk
from ohf.model import InstanceState, Template

# A few real catalogue types (x86 and Graviton): enough to vary weights and attributes.
INSTANCE_TYPES: tuple[str, ...] = ("c5.large", "c5.xlarge", "m5.large", "m5.xlarge", "c7g.large")
AMI_IDS: tuple[str, ...] = ("ami-0fa1ce0000000001", "ami-0123456789abcdef0")
# SSM parameters the strategies use, with the AMI each resolves to in the fake cloud.
SSM_IMAGES: dict[str, str] = {
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64": "ami-0fa1ce0000000001",
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64": "ami-0fa1ce0000000002",
}
INSTANCE_STATES: tuple[InstanceState, ...] = (
    "pending",
    "running",
    "stopping",
    "stopped",
    "shutting-down",
    "terminated",
    "gone",
)
HF_CALLS: tuple[str, ...] = (
    "getAvailableTemplates",
    "requestMachines",
    "getRequestStatus",
    "requestReturnMachines",
    "getReturnRequests",
)

_ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-"
_TAG_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-.:/"
_TAG_VALUE_CHARS = _TAG_KEY_CHARS + "=+@ "
_EPOCH = 1_700_000_000


def template_ids() -> st.SearchStrategy[str]:
    """Valid template ids (`[0-9A-Za-z_-]{1,64}`), kept short."""
    return st.text(alphabet=_ID_CHARS, min_size=1, max_size=16)


def instance_ids() -> st.SearchStrategy[str]:
    """EC2-shaped instance ids (`i-` and 17 hex digits)."""
    return st.integers(min_value=0, max_value=2**68 - 1).map(lambda n: f"i-{n:017x}")


def request_ids(prefix: str = "req") -> st.SearchStrategy[str]:
    """Request ids in ohf's shape (`req-...` or `ret-...`)."""
    return st.integers(min_value=1, max_value=10**8).map(lambda n: f"{prefix}-{n:08d}")


def image_ids() -> st.SearchStrategy[str]:
    """An AMI id or an SSM parameter path (both forms `imageId` accepts)."""
    return st.sampled_from((*AMI_IDS, *SSM_IMAGES))


def tag_keys() -> st.SearchStrategy[str]:
    """Tag keys that survive `instanceTags` formatting: no `;`/`=`, no edge blanks, no `aws:`."""
    return st.text(alphabet=_TAG_KEY_CHARS, min_size=1, max_size=10).filter(
        lambda k: not k.lower().startswith("aws:")
    )


def tag_values() -> st.SearchStrategy[str]:
    """Tag values that survive formatting: no `;`, no leading/trailing blanks (may hold `=`)."""
    return st.text(alphabet=_TAG_VALUE_CHARS, max_size=10).map(str.strip)


def tag_pairs() -> st.SearchStrategy[list[tuple[str, str]]]:
    """A short list of (key, value) instance tags with distinct keys."""
    return st.lists(st.tuples(tag_keys(), tag_values()), max_size=3, unique_by=lambda kv: kv[0])


def format_tags(pairs: Sequence[tuple[str, str]]) -> str:
    """IBM's `instanceTags` text for `pairs`: `k1=v1;k2=v2`."""
    return ";".join(f"{k}={v}" for k, v in pairs)


def vm_types() -> st.SearchStrategy[dict[str, int]]:
    """`vmTypes`: one to three catalogue types with weights (capacity units per instance)."""
    return st.dictionaries(
        st.sampled_from(INSTANCE_TYPES),
        st.integers(min_value=1, max_value=4),
        min_size=1,
        max_size=3,
    )


def json_scalars() -> st.SearchStrategy[Any]:
    """Small JSON scalars (no floats: NaN and -0.0 make equality laws noisy)."""
    return st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8))


def extra_keys() -> st.SearchStrategy[dict[str, Any]]:
    """Keys ohf does not know in a template (kept in `extras`, echoed to HF unchanged)."""
    return st.dictionaries(
        st.sampled_from(("customKey", "site", "owner", "costCentre", "x-note")),
        st.one_of(json_scalars(), st.lists(st.text(max_size=4), max_size=2)),
        max_size=2,
    )


@st.composite
def templates(
    draw: st.DrawFn,
    *,
    template_id: str | None = None,
    with_extras: bool = True,
    max_numbers: st.SearchStrategy[int] | None = None,
) -> Template:
    """A valid `Template`: maxNumber -1..50, vmType or weighted vmTypes, AMI or SSM imageId."""
    weighted = draw(st.booleans())
    tags = draw(st.one_of(st.none(), tag_pairs().map(format_tags)))
    spot = draw(st.sampled_from(("ondemand", "ondemand", "spot")))
    return Template(
        template_id=template_id if template_id is not None else draw(template_ids()),
        max_number=draw(
            st.integers(min_value=-1, max_value=50) if max_numbers is None else max_numbers
        ),
        image_id=draw(image_ids()),
        vm_type=None if weighted else draw(st.sampled_from(INSTANCE_TYPES)),
        vm_types=draw(vm_types()) if weighted else None,
        subnet_id=draw(
            st.one_of(
                st.none(),
                st.sampled_from(("subnet-0aaa", "subnet-0aaa,subnet-0bbb")),
                st.just(["subnet-0aaa", "subnet-0ccc"]),
            )
        ),
        price_type="spot" if spot == "spot" else "ondemand",
        instance_tags=tags or None,
        extras=draw(extra_keys()) if with_extras else {},
    )


def template_lists(
    *,
    min_size: int = 1,
    max_size: int = 4,
    with_extras: bool = True,
    max_numbers: st.SearchStrategy[int] | None = None,
) -> st.SearchStrategy[list[Template]]:
    """A list of valid templates with distinct ids (`max_numbers` overrides -1..50)."""
    return st.lists(
        templates(with_extras=with_extras, max_numbers=max_numbers),
        min_size=min_size,
        max_size=max_size,
        unique_by=lambda t: t.template_id,
    )


@st.composite
def ibm_template_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A template as it appears in IBM's `awsprov_templates.json`, unknown keys included."""
    template = draw(templates(with_extras=False))
    body: dict[str, Any] = {
        k: v for k, v in msgspec.to_builtins(template).items() if k != "extras" and v is not None
    }
    if draw(st.booleans()):
        body["attributes"] = {
            "type": ["String", "X86_64"],
            "ncpus": ["Numeric", str(draw(st.integers(1, 64)))],
            "nram": ["Numeric", str(1024 * draw(st.integers(1, 64)))],
        }
    else:
        body.pop("attributes", None)
    body.update(draw(extra_keys()))
    return body


def request_machines_inputs(
    template_ids: Sequence[str], *, max_count: int = 50
) -> st.SearchStrategy[RequestMachinesIn]:
    """requestMachines inputs naming one of `template_ids` (valid HF input; may be over limits)."""
    return st.builds(
        lambda tid, n: RequestMachinesIn(template=TemplateAsk(template_id=tid, machine_count=n)),
        st.sampled_from(list(template_ids)),
        st.integers(min_value=1, max_value=max_count),
    )


def machine_refs(machine_ids: Sequence[str], names: Sequence[str] = ()) -> st.SearchStrategy[Any]:
    """HF `{"name", "machineId"}` objects for some of `machine_ids` (or unknown ones)."""
    pool = st.sampled_from(list(machine_ids)) if machine_ids else instance_ids()
    name = st.sampled_from(list(names)) if names else st.just("")
    return st.builds(lambda i, n: {"name": n, "machineId": i}, pool, name)


def hf_bodies(
    call: str,
    *,
    template_ids: Sequence[str] = (),
    request_ids: Sequence[str] = (),
    machine_ids: Sequence[str] = (),
) -> st.SearchStrategy[Any]:
    """A valid HF input document (JSON-able) for `call`, naming the given ids where it can."""
    known_templates = list(template_ids) or ["OnDemand-c5"]
    if call == "getAvailableTemplates":
        return st.just({})
    if call == "requestMachines":
        return st.builds(
            lambda t, n: {"template": {"templateId": t, "machineCount": n}},
            st.sampled_from(known_templates),
            st.integers(1, 50),
        )
    if call == "getRequestStatus":
        rid = st.sampled_from(list(request_ids)) if request_ids else _request_id_any()
        return st.lists(rid, min_size=1, max_size=4).map(
            lambda ids: {"requests": [{"requestId": i} for i in ids]}
        )
    if call == "requestReturnMachines":
        return st.lists(machine_refs(machine_ids), min_size=1, max_size=4).map(
            lambda ms: {"machines": ms}
        )
    if call == "getReturnRequests":
        return st.lists(machine_refs(machine_ids), max_size=4).map(lambda ms: {"machines": ms})
    raise ValueError(f"unknown HF call {call!r}; expected one of {', '.join(HF_CALLS)}")


def _request_id_any() -> st.SearchStrategy[str]:
    return st.one_of(request_ids("req"), request_ids("ret"))
