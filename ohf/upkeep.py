"""Care of running machines beyond HF's asking, pure: InstanceID tags, ending noticed spot machines.

Both are IBM awsv2 options (`[aws] tag_instance_id`, `[aws] terminate_spot_on_notice`), and
both are remembered in the state, so that a machine is tagged once and terminated once.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping

import msgspec
from returns.result import Failure

from ohf.intents import Intent, TagInstanceIds, TerminateInstances
from ohf.model import TERMINAL_STATES, Instance, InstanceState, Machine, SpotSignal, State
from ohf.program import Answer, on, perform


def _note(message: str, extra: str) -> str:
    return "; ".join(x for x in (message, extra) if x)


def untagged(state: State, request_ids: Iterable[str], seen: Iterable[Instance]) -> list[Instance]:
    """The machines of these requests that run now but carry no InstanceID tag yet, as seen."""
    found = {i.instance_id: i for i in seen}
    return [
        found[m.machine_id]
        for rid in request_ids
        for m in state.requests[rid].machines
        if m.state == "running" and not m.id_tagged and m.machine_id in found
    ]


def _with_machines(state: State, changed: Mapping[str, Machine]) -> State:
    """The state with the machines in `changed` replaced (by instance id)."""
    requests = {
        rid: msgspec.structs.replace(
            r, machines=tuple(changed.get(m.machine_id, m) for m in r.machines)
        )
        if any(m.machine_id in changed for m in r.machines)
        else r
        for rid, r in state.requests.items()
    }
    return msgspec.structs.replace(state, requests=requests)


def tag_running(
    state: State, request_ids: Iterable[str], seen: Iterable[Instance]
) -> Generator[Intent, Answer, tuple[State, str]]:
    """Tag newly running machines and their volumes `InstanceID=<id>`; remember which were.

    One intent per poll (per provider); the volumes are the ones DescribeInstances listed.
    What was refused is tried again on the next poll; the note says why it was refused.
    """
    wanted = untagged(state, request_ids, seen)
    if not wanted:
        return state, ""
    answer = yield from perform(
        TagInstanceIds(instances=tuple((i.instance_id, i.volume_ids) for i in wanted))
    )
    if isinstance(answer, Failure):
        return state, f"InstanceID tags not set ({answer.failure().message})"
    outcome: Mapping[str, str] = answer.unwrap()
    machines = {m.machine_id: m for r in state.requests.values() for m in r.machines}
    tagged = {
        i: msgspec.structs.replace(machines[i], id_tagged=True)
        for i, why in outcome.items()
        if not why and i in machines
    }
    # Absent from the outcome: not tried, after a refusal that would have refused them too.
    missed = len(wanted) - len(tagged)
    why = next((why for why in outcome.values() if why), "")
    note = f"InstanceID tags not set on {missed} machine(s)" if missed else ""
    return _with_machines(state, tagged), f"{note} ({why})" if why else note


# Why the state says a machine ended: HF reads it in the machine's message.
ENDED_ON_NOTICE = "terminated by ohf on its spot interruption notice (terminate_spot_on_notice)"


def noticed(
    index: Mapping[str, tuple[str, Machine]], signals: Mapping[str, SpotSignal]
) -> list[str]:
    """Machines ohf launched with an interruption notice, not returned nor ending already."""
    return sorted(
        i
        for i, signal in signals.items()
        if signal.kind == "interruption"
        and i in index
        and index[i][1].returned_by is None
        and index[i][1].state not in TERMINAL_STATES
    )


def end_noticed(
    state: State,
    index: Mapping[str, tuple[str, Machine]],
    signals: Mapping[str, SpotSignal],
    providers: Mapping[str, str],
) -> Generator[Intent, Answer, tuple[State, tuple[str, ...], str]]:
    """Terminate the noticed spot machines now, one TerminateInstances per provider.

    `providers` names each machine's provider. AWS takes them two minutes after the notice
    anyway; ending them at once stops work that cannot finish and the cost of the wait. The
    state records each machine's new state and why: (state, ids terminated, note).
    """
    by_provider: dict[str, list[str]] = {}
    for machine_id in noticed(index, signals):
        by_provider.setdefault(providers.get(machine_id, ""), []).append(machine_id)
    changed: dict[str, Machine] = {}
    notes: list[str] = []
    for provider, members in sorted(by_provider.items()):
        answer = yield from on(provider, perform(TerminateInstances(instance_ids=tuple(members))))
        if isinstance(answer, Failure):
            notes.append(
                f"could not terminate {len(members)} noticed spot machine(s) "
                f"({answer.failure().message}); AWS takes them within two minutes"
            )
            continue
        states: Mapping[str, InstanceState] = answer.unwrap()
        for machine_id in members:
            machine = index[machine_id][1]
            changed[machine_id] = msgspec.structs.replace(
                machine,
                state=states.get(machine_id, "shutting-down"),
                message=_note(machine.message, ENDED_ON_NOTICE),
            )
    if changed:
        notes.insert(0, f"{len(changed)} noticed spot machine(s) terminated at once")
    return _with_machines(state, changed), tuple(sorted(changed)), "; ".join(notes)
