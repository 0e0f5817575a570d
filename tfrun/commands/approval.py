"""What a person must answer before terraform changes anything: the protected environments'
typed names (safety.Confirmation) and the one 'yes' (or --yes)."""

from __future__ import annotations

from tfrun import safety, tfargs, ui
from tfrun.commands.run_args import RunArgs
from tfrun.discovery import Stack
from tfrun.errors import RefusedError, UsageError


def confirm(confirmations: list[safety.Confirmation]) -> None:
    """The protected environments' typed names; a wrong answer is a refusal (exit 3)."""
    for confirmation in confirmations:
        if not confirmation.accepts(ui.ask(confirmation.prompt)):
            raise RefusedError(
                f"{', '.join(confirmation.stacks)}: the answer was not '{confirmation.env}', "
                "so nothing was applied."
            )


def can_approve(args: RunArgs, stacks: list[Stack]) -> None:
    """A command that changes infrastructure needs --yes or a terminal to ask on."""
    if args.command in tfargs.NEEDS_APPROVAL and not args.yes and not ui.can_ask():
        what = f"over {len(stacks)} stacks " if len(stacks) > 1 else ""
        command = f"run-all {args.command}" if args.run_all else args.command
        raise UsageError(
            f"'tfrun {command}' {what}changes infrastructure and there is no terminal to "
            "ask for approval. Add --yes to approve it in advance."
        )


def approve(
    stacks: list[Stack],
    foreground: bool,
    args: RunArgs,
    confirmations: list[safety.Confirmation],
) -> bool:
    """Ask what a person must answer before anything runs; whether terraform is to apply or
    destroy without asking again. "No" to any question is a refusal (exit 3)."""
    confirm(confirmations)
    if args.command not in tfargs.NEEDS_APPROVAL:
        return False
    can_approve(args, stacks)
    if args.yes:
        return True
    if foreground:
        return False  # terraform shows its plan and asks itself
    listing = "\n".join(f"  {stack.rel}" for stack in stacks)
    answer = ui.ask(
        f"terraform {args.command} in these {len(stacks)} stacks, in order:\n{listing}\n"
        "Type 'yes' to go on:"
    )
    if answer.strip() != "yes":
        raise RefusedError(f"the answer was not 'yes', so nothing ran ({len(stacks)} stacks).")
    return True
