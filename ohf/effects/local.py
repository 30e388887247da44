"""The interpreter for local intents: state checkpoints, reading text files, logging."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from returns.result import Success

from ohf.effects import store_json
from ohf.effects.files import read_text
from ohf.effects.intents import Intent, Log, ReadText, SaveState
from ohf.program import Answer, Interpreter


def local_interpreter(
    state_path: Path, log: logging.Logger, cloud: Callable[[Intent], Answer]
) -> Interpreter:
    """Perform local intents here and hand every cloud intent to `cloud`."""

    def interpret(intent: Intent) -> Answer:
        if isinstance(intent, SaveState):
            return store_json.save(state_path, intent.state)
        if isinstance(intent, ReadText):
            return read_text(intent.path, what="userDataScript")
        if isinstance(intent, Log):
            log.log(logging.getLevelName(intent.level), "%s %s", intent.event, intent.fields)
            return Success(None)
        return cloud(intent)

    return interpret
