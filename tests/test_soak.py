"""The soak test at CI size: two weeks of a busy site, every day checked (`tests.support.soak`).

`tests.support.soak.run` raises at the end of any day on which a machine was lost or held twice
or an `availableNumber` was wrong. Here the thresholds are shrunk (retention 1.5 days,
compaction at 96 KiB or half a day past the retention, the log rotated at 64 KiB) so that in two
simulated weeks the state is pruned, the event log compacted by age and by size, and `ohf.log`
rotated again and again; the files must stay bounded. The full year runs with `nox -s soak`
and writes `benchmarks/SOAK.md`.
"""

from __future__ import annotations

from pathlib import Path

from ohf.compaction import rebuild
from ohf.config import Config
from ohf.effects import store
from ohf.effects.files import Settings
from tests.support.soak import CI, run


def test_two_busy_weeks_keep_every_machine_and_the_files_bounded(tmp_path: Path) -> None:
    days = run(CI, tmp_path)
    assert len(days) == CI.days
    assert sum(d.requests for d in days) >= CI.days * CI.requests_per_day
    assert sum(d.reclaimed for d in days) > 0, "no spot reclaim happened: the soak is too tame"

    # Bounded: the event log is its tail (at most compact_bytes when compacted) plus a
    # snapshot about the size of the state; the log file and its backups, their cap.
    biggest_state = max(d.state_bytes for d in days)
    for day in days:
        assert day.events_bytes <= CI.compact_bytes + 2 * biggest_state, day
        assert day.log_bytes <= CI.log_max_bytes * (CI.log_backups + 1) + 64_000, day
    # Flat: past the warm-up (retention + a compaction), the second week is no bigger than the
    # first's steady days (with room for the day-to-day wobble of random demand).
    warm = int(CI.retention_days + CI.compact_days) + 2
    steady, late = days[warm : warm + 4], days[-4:]
    assert max(d.state_bytes for d in late) <= 1.5 * max(d.state_bytes for d in steady)
    assert max(d.events_bytes for d in late) <= 1.5 * max(d.events_bytes for d in steady)

    # The log was compacted (more than once: the snapshot folded many days), and it is exact.
    settings = Settings(
        config=Config(),
        source="<soak>",
        conf_dir=str(tmp_path),
        state_path=str(tmp_path / "ohf-state.json"),
        log_path=None,
    )
    log = store.read_log(settings).unwrap()
    assert log.snapshot is not None
    assert log.snapshot.folded > len(log.events)
    assert rebuild(log) == store.read(settings).unwrap()
    assert store.check(settings).ok
    assert (tmp_path / "ohf.log.1").exists(), "the log was never rotated"
    assert len(list(tmp_path.glob("ohf-state.events*.jsonl"))) == 1


def test_the_daily_check_finds_a_lost_machine_and_a_wrong_available_number(
    tmp_path: Path,
) -> None:
    import random

    import msgspec

    from ohf.config import ProviderConfig
    from ohf.testing import call_all, fake_providers
    from tests.support.soak import PROVIDERS, Hf, check, templates

    shown = templates(1)
    fp = fake_providers(shown, tmp_path, [ProviderConfig(name=p) for p in PROVIDERS])
    hf = Hf(fp=fp, rng=random.Random(1))
    hf.ask("T00", 3)
    hf.poll()
    state = store.read(fp.shell.settings).unwrap()
    listing = call_all(fp, "getAvailableTemplates", {})[1]
    assert check(hf, state, listing, shown) == []
    assert len(state.requests) == 1
    forgotten = msgspec.structs.replace(state, requests={})
    found = check(hf, forgotten, listing, shown)
    assert sum("is in no request (lost)" in f for f in found) == 3, found
    wrong = {"templates": [{**listing["templates"][0], "availableNumber": 240}]}
    assert check(hf, state, wrong, shown) == ["T00: availableNumber 240, expected 237"]
