"""The interpreter for local intents: state checkpoints and reading text files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ohf.effects import store_json
from ohf.effects.files import read_text
from ohf.effects.intents import Intent, ReadText, SaveState
from ohf.program import Answer, Interpreter


def local_interpreter(state_path: Path, cloud: Callable[[Intent], Answer]) -> Interpreter:
    """Perform local intents here and hand every cloud intent to `cloud`."""

    def interpret(intent: Intent) -> Answer:
        if isinstance(intent, SaveState):
            return store_json.save(state_path, intent.state)
        if isinstance(intent, ReadText):
            return read_text(intent.path, what="userDataScript")
        return cloud(intent)

    return interpret
