"""Programs as data: a generator that yields intents and receives their `Result`s, and `run`.

`run` is the whole of the machinery. The same program runs against the boto3 interpreter, the
fake cloud, or a scripted list of (intent, result) pairs in a unit test.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

from returns.result import Result

from ohf.intents import LOCAL_INTENTS, At, Intent
from ohf.model import OhfError

T = TypeVar("T")
Answer = Result[Any, OhfError]
Program = Generator[Intent, Answer, T]
Interpreter = Callable[[Intent], Answer]


def run(program: Program[T], interpret: Interpreter) -> T:
    """Drive `program` to its end, performing each intent with `interpret`."""
    try:
        intent = next(program)
        while True:
            intent = program.send(interpret(intent))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def perform(intent: Intent) -> Generator[Intent, Answer, Answer]:
    """Yield one intent and return its answer: `answer = yield from perform(X(...))`."""
    answer = yield intent
    return answer


def on(provider: str, program: Program[T]) -> Program[T]:
    """`program` with each cloud intent addressed to `provider` (`At`); "" leaves them bare.

    The core's programs never name an account: the multi-provider steps run them `on` the
    provider a request lives in, and the routing interpreter does the rest.
    """
    if not provider:
        return (yield from program)
    try:
        intent = next(program)
        while True:
            wrapped: Intent = (
                intent
                if isinstance(intent, (*LOCAL_INTENTS, At))
                else At(provider=provider, intent=intent)
            )
            answer = yield wrapped
            intent = program.send(answer)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
