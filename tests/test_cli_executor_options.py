"""The executor options every rendering command shares, declared once: typer sees the six options, the command gets
one ExecutorSpec, a bad combination is one error, and quickstart can still call the command by its signature."""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from harvester.cli_common import ChosenExecutor, DbOption, executor_options
from harvester.commands.quickstart import _step
from harvester.errors import HarvestError
from renderer.executor_spec import ExecutorSpec

received: list[tuple[ExecutorSpec, int]] = []


@executor_options
def draw(db: DbOption = None, executor: ChosenExecutor = None,
         seed: int = typer.Option(0, "--seed", help="A seed.")) -> None:
    received.append((executor, seed))


app = typer.Typer()
app.command("draw")(draw)
app.command("other")(lambda: None)  # two commands, so that `draw` is a subcommand as in harvest


def test_the_command_gets_one_spec_built_from_the_options():
    received.clear()
    result = CliRunner().invoke(app, ["draw", "--workers", "3", "--ray-cpus-per-actor", "2", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert received == [(ExecutorSpec(kind="local", workers=3, ray_cpus_per_actor=2.0), 7)]
    received.clear()
    assert CliRunner().invoke(app, ["draw"]).exit_code == 0
    assert received == [(ExecutorSpec(), 0)]


def test_a_bad_combination_is_the_shared_error():
    result = CliRunner().invoke(app, ["draw", "--ray-address", "auto"])
    assert isinstance(result.exception, HarvestError) and "--ray-address needs --executor ray" in str(result.exception)
    result = CliRunner().invoke(app, ["draw", "--executor", "cloud"])
    assert "unknown executor 'cloud'" in str(result.exception)


def test_help_lists_the_options_where_the_spec_parameter_is():
    result = CliRunner().invoke(app, ["draw", "--help"], env={"COLUMNS": "200"})
    options = re.findall(r"(--[a-z-]+)", result.output)
    assert [o for o in dict.fromkeys(options) if o != "--help"] == [
        "--db", "--workers", "--executor", "--ray-address", "--ray-cpus-per-actor", "--ray-gpus-per-actor",
        "--render-device", "--seed"]


def test_quickstart_calls_the_command_with_its_defaults():
    received.clear()
    _step("draw", draw, workers=2)
    assert received == [(ExecutorSpec(workers=2), 0)]
