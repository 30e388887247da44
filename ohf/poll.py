"""getRequestStatus, pure: one describe per provider, spill-over of short fleets, one HF answer.

Each provider a request (or a part of it) lives on is observed once per poll
(`ohf.status.observe_group`); a fleet part that stopped short hands the rest to the next
provider (`ohf.parts.spill_over`); HF gets one status per request id over all its parts.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping

from returns.result import Result, Success

from ohf.intents import Intent
from ohf.messages import RequestsStatusOut, RequestStatusIn, RequestStatusOut
from ohf.model import OhfError, State, Template
from ohf.outcome import Done
from ohf.parts import combined_status, hf_parts, parts_index, spill_over
from ohf.placement import Placement, label
from ohf.program import Answer, on
from ohf.status import (
    acquire_result,
    machine_out,
    machines_by_id,
    observe_group,
    return_status,
    settle_returns,
    settled,
    unknown_request,
)


def request_status(
    state: State,
    ask: RequestStatusIn,
    *,
    weights: Mapping[str, Mapping[str, int]],
    now: int,
    templates: tuple[Template, ...] = (),
    placement: Placement | None = None,
    provider_weights: Mapping[str, Mapping[str, Mapping[str, int]]] | None = None,
    tag_ids: bool = False,
) -> Generator[Intent, Answer, Result[Done, OhfError]]:
    """The getRequestStatus program: one describe per provider for every request asked about.

    A request placed on several providers is observed in each, reported as one, and (with
    `placement`) a fleet part that stopped short hands the rest to the next provider.
    `provider_weights` gives each provider's unit weights (its view of the templates);
    `tag_ids` tags machines newly running `InstanceID=<id>` (`[aws] tag_instance_id`).
    """
    ids = list(dict.fromkeys(r.request_id for r in ask.requests))
    acquire_ids = [i for i in ids if i in state.requests]
    return_ids = [i for i in ids if i in state.returns and i not in state.requests]
    index = machines_by_id(state)
    owners = {
        index[m][0] for rid in return_ids for m in state.returns[rid].machine_ids if m in index
    }
    parts = parts_index(state)
    asked_parts = {p.request_id for rid in acquire_ids for p in parts.get(rid, [])}
    # Requests whose requestMachines was killed before answering: HF will never ask about them.
    cut = {rid for rid, r in state.requests.items() if not r.answered and not settled(r)}
    # A finished request whose machines are all gone has nothing left to learn from AWS.
    to_observe = sorted(
        rid
        for rid in set(acquire_ids) | asked_parts | owners | cut
        if not settled(state.requests[rid])
    )
    by_provider: dict[str, list[str]] = {}
    for rid in to_observe:
        by_provider.setdefault(state.requests[rid].provider, []).append(rid)
    notes: dict[str, str] = {}
    new_state = state
    for provider, rids in sorted(by_provider.items()):
        group_cut = sorted(cut.intersection(rids))
        new_state, notes[provider] = yield from on(
            provider,
            observe_group(
                new_state,
                rids,
                group_cut,
                (provider_weights or {}).get(provider, weights),
                now,
                tag_ids=tag_ids,
            ),
        )
    if placement is not None and placement.failover:
        new_state = yield from spill_over(state, new_state, acquire_ids, templates, placement, now)
    new_state = settle_returns(new_state, return_ids)
    new_index = machines_by_id(new_state)
    new_parts = parts_index(new_state)

    def stale(providers: Iterable[str]) -> str:
        found = [(p, notes[p]) for p in dict.fromkeys(providers) if notes.get(p)]
        if len(by_provider) <= 1:
            return "; ".join(n for _, n in found)
        return "; ".join(f"provider {label(p)}: {n}" for p, n in found)

    out: list[RequestStatusOut] = []
    for rid in ids:
        if rid in new_state.requests:
            request_parts = hf_parts(new_state, rid, new_parts)
            status, message = combined_status(request_parts)
            note = stale(p.provider for p in request_parts)
            out.append(
                RequestStatusOut(
                    request_id=rid,
                    status=status,
                    message="; ".join(x for x in (message, note) if x),
                    machines=[
                        machine_out(m, acquire_result(m)) for p in request_parts for m in p.machines
                    ],
                )
            )
        elif rid in new_state.returns:
            out.append(return_status(new_state.returns[rid], new_index))
        else:
            out.append(unknown_request(rid))
    return Success(
        Done(reply=RequestsStatusOut(requests=out, message=stale(notes)), state=new_state)
    )
