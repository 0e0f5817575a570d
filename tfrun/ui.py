"""The one place that prints, and the only module that imports rich."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text

# stderr carries tfrun's own messages so that stdout stays terraform's (`tfrun output -json`).
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


def error(message: str) -> None:
    # Text, not markup: messages quote user input, which may hold "[...]".
    stderr.print(Text.assemble(("tfrun: error: ", "bold red"), message))


def info(message: str) -> None:
    stderr.print(Text.assemble(("tfrun: ", "dim"), message))


def out(text: str) -> None:
    """Plain program output (graph, generated pipelines): never styled, never wrapped."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
