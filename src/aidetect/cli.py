"""The ``aidetect`` command: a thin layer over the library.

Each concern lives in its own command module under ``aidetect.commands`` and is imported
lazily, so ``aidetect serve`` never imports torch and ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys

import click

from aidetect.errors import AidetectError

# command name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "demo": "aidetect.commands.demo:demo",
    "data": "aidetect.commands.data:data",
    "train": "aidetect.commands.model:train",
    "evaluate": "aidetect.commands.model:evaluate",
    "register": "aidetect.commands.model:register",
    "optimize": "aidetect.commands.serving:optimize",
    "serve": "aidetect.commands.serving:serve",
    "predict": "aidetect.commands.serving:predict",
    "explain": "aidetect.commands.serving:explain",
    "pipeline": "aidetect.commands.pipeline:pipeline",
    "promote": "aidetect.commands.promote:promote",
    "canary": "aidetect.commands.canary:canary",
    "drift": "aidetect.commands.drift:drift",
    "report": "aidetect.commands.report:report",
    "review": "aidetect.commands.feedback:review",
    "feedback": "aidetect.commands.feedback:feedback",
    "quality": "aidetect.commands.quality:quality",
    "simulate": "aidetect.commands.simulate:simulate",
}


def _available(target: str) -> bool:
    """Whether the command's module is installed (the serving image ships a subset)."""
    return importlib.util.find_spec(target.partition(":")[0]) is not None


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, target in COMMANDS.items() if _available(target))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not _available(target):
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AidetectError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


def _quiet_third_parties() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="aidetect")
def main(verbose: int) -> None:
    """Train, ship and watch a detector of AI-generated images."""
    _quiet_third_parties()
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    main()
