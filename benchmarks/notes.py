"""RESULTS.md's notes: what the figures mean, how the tools differ, and whether ohf's AWS calls
per HF call are what the run this one replaces recorded."""

from __future__ import annotations

from typing import Any


def aws_calls_vs_previous(results: Any) -> str | None:
    """Whether ohf made the same AWS calls per HF call as in the run this one replaces."""
    previous = results.previous
    if not previous:
        return None
    before = {
        label: tools["ohf"]["samples"][-1]["aws"]
        for label, tools in previous.get("cases", {}).items()
        if tools.get("ohf", {}).get("samples")
    }
    same, changed = [], []
    for case, outcomes in results.cases:
        ohf = outcomes.get("ohf")
        if ohf is None or not ohf.samples or case.label not in before:
            continue
        now = dict(ohf.samples[-1].aws)
        entry = f"{case.label}: {', '.join(f'{k} {v}' for k, v in sorted(now.items())) or 'none'}"
        if now == before[case.label]:
            same.append(entry)
        else:
            changed.append(f"{entry} (was {before[case.label]})")
    if not same and not changed:
        return f"No call of the previous run ({previous.get('started')}) had the same size."
    text = f"AWS calls per HF call, against the previous run ({previous.get('started')}): "
    if changed:
        return text + "**changed**: " + "; ".join(changed) + ("; same: " + "; ".join(same))
    return text + "the same for every call of the same size: " + "; ".join(same) + "."


def section(results: Any) -> str:
    """The notes: what the figures mean, what differs between the tools, and this run's own."""
    compared = aws_calls_vs_previous(results)
    notes = [
        *([compared] if compared else []),
        "moto_server is the same for both tools but is not AWS: serialising 1,000 instances "
        "costs it several seconds of CPU (see the moto CPU column), so the wall time of every "
        "call that moves 1,000s of instances is mostly moto's. The CPU column is the tool's own "
        "work.",
        f"Peak RSS cannot read below {results.rss_floor:.1f} MiB: the measuring wrapper's own "
        "peak, which Linux carries over into the child (measured by running `true` under it).",
        "`benchmarks/moto_bench.py` puts right three departures of moto 5.2.5 from EC2, for "
        "both tools alike: RunInstances launches `MaxCount` instances, as EC2 does with "
        "capacity to spare (moto launches `MinCount`; ORB asks `MinCount=1, MaxCount=n` and "
        "would hold one machine per request; ohf asks `MinCount=MaxCount=n`); DescribeInstances "
        "pages hold up to `MaxResults` instances, not reservations; and one resource's tags are "
        "looked up directly instead of by scanning every tag (quadratic: 80 s to describe 5,000 "
        "instances).",
        "ORB is run as `orb --config CONF/config.json <resource> <action> -f FILE`, the command "
        "its HF scripts end in; the scripts themselves (`invoke_provider.sh`: bash, plus a "
        "`python3 -c 'import yaml ...'` probe on every call) add more per call and are not "
        "counted. ohf is run as `python -m ohf CALL -f FILE` (its scripts `exec` the same).",
        "ORB marks a RunInstances request `complete` as soon as RunInstances returns all its "
        "instances, and never syncs a terminal request with AWS again: its getRequestStatus "
        "answers from its JSON store with no AWS call, and its machines stay "
        "`pending`/`executing` as RunInstances first reported them. ohf describes the instances "
        "on every poll (one DescribeInstances page per 1,000 machines) and reports them "
        "`running`/`succeed`.",
        "getReturnRequests differs in meaning: ORB lists the machines of its own return "
        "requests (those HF returned); ohf lists machines the cloud is taking back (spot "
        "reclaims, instances terminated outside HF) and not the ones HF returned.",
        "ORB 1.8.5's JSON store lost updates when two `orb machines request` ran at once "
        "(HF does overlap calls): in a first full run, building the 100 requests two at a "
        "time under load left 3 requests `pending` with no instances recorded (ORB's log says "
        "it launched their 10 instances each and completed them; the instances were running in "
        "moto, untracked) and 6 more with a lost status change; status polls of those failed "
        "with 'did not emit ProviderFulfilment'. Its save writes the whole `requests`/`machines` "
        "section from the process's own earlier read. The benchmark therefore builds ORB's "
        "state one call at a time. (ohf holds its lock over the whole call and builds two at a "
        "time; every run checks the machines each tool holds before measuring.)",
        "ORB retries a slow RunInstances under new ClientTokens: in an earlier full run under "
        "heavy load (1-min load average ~14 on 2 cores), moto took over 30 s to answer "
        "RunInstances for 1,000 machines, and one ORB requestMachines (read timeout 30 s, "
        "botocore retries 1, then its own retries) sent RunInstances 5 times under 3 different "
        "ClientTokens, each of which EC2 would treat as a new launch. ohf derives each "
        "ClientToken from the request id (and the attempt), so a retried call reuses it.",
        "ORB creates a launch template for every request and deletes it on the first return "
        "from that request (the AWS call columns list the actions).",
        *results.notes,
    ]
    return "## Notes\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
