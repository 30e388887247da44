"""The interpreter for local intents: state checkpoints and reading text files."""

from __future__ import annotations

from collections.abc import Callable

from returns.result import Result

from ohf.effects.files import read_text
from ohf.intents import Intent, ReadText, SaveState
from ohf.model import OhfError, State
from ohf.program import Answer, Interpreter

Save = Callable[[State], Result[None, OhfError]]


def local_interpreter(save: Save, cloud: Callable[[Intent], Answer]) -> Interpreter:
    """Perform local intents here (`save` commits a checkpoint) and the cloud ones with `cloud`."""

    def interpret(intent: Intent) -> Answer:
        if isinstance(intent, SaveState):
            return save(intent.state)
        if isinstance(intent, ReadText):
            return read_text(intent.path, what="userDataScript")
        return cloud(intent)

    return interpret
