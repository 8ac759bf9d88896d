"""Stopping `harvest pretrain` with SIGINT or SIGTERM: a checkpoint at the step reached, one line with the command
that resumes, the shell's exit code, no render process left behind; and progress lines off a terminal."""

from __future__ import annotations

import io
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from rich.console import Console  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from corpus.export_format import read_export  # noqa: E402
from harvester.cli import app  # noqa: E402
from harvester.commands.train import resume_command  # noqa: E402
from harvester.commands.train_progress import PlainProgress, step_reporter  # noqa: E402
from pretrain.checkpoints import CHECKPOINT_FORMAT, load_checkpoint, save_atomic  # noqa: E402
from pretrain.stopping import StopRequest, stop_on_signals  # noqa: E402
from pretrain.train import StepMetrics, run_pretraining  # noqa: E402
from tests.test_pretrain import (  # noqa: E402
    CPU,
    _free_port,
    _one_torch_thread,  # noqa: F401 (autouse fixture: one intra-op thread, as in test_pretrain)
    small_config,
    write_tiny_export,
)

DEADLINE_S = 240  # generous: both cores may be busy with other test runs
TINY_RUN = ["--method", "supervised", "--width", "8", "--size", "32", "--batch-size", "8", "--device", "cpu"]


@pytest.fixture()
def workdir(tmp_path) -> Path:
    """A folder holding `export/`, from which the CLI runs with relative paths, as a user would."""
    write_tiny_export(tmp_path / "export")
    return tmp_path


def _cli_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "HARVEST_DB")}
    env["PYTHONUNBUFFERED"] = "1"
    return env  # no COLUMNS: rich would cut lines at 80 columns off a terminal


def _as_python(words: list[str]) -> list[str]:
    """`harvest ...` run with this interpreter, whatever is on PATH."""
    assert words[0] == "harvest", words
    return [sys.executable, "-m", "harvester.cli", *words[1:]]


class _Run:
    """`harvest pretrain` in its own process group (a terminal's Ctrl-C reaches the whole group), stdout read
    line by line as it comes."""

    def __init__(self, cwd: Path, args: list[str]) -> None:
        self.process = subprocess.Popen(
            _as_python(["harvest", "pretrain", *args]), cwd=cwd, env=_cli_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.process.poll() is None:  # a failed assertion: leave nothing running
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for_line(self, prefix: str) -> str:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, f"exited early: {self.process.stderr.read()}"
                continue
            self.stdout.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting {prefix!r} within {DEADLINE_S} s: {self.stdout}")

    def finish(self) -> tuple[int, str]:
        stderr = self.process.communicate(timeout=DEADLINE_S)[1]
        while not self.lines.empty():
            self.stdout.append(self.lines.get())
        return self.process.returncode, stderr


def _live_processes_in_group(pgid: int) -> list[int]:
    """Processes of the group that still run (a zombie waits for init to reap it: it has already exited)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            alive.append(int(entry.name))
    return alive


def _assert_group_ends(pgid: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while _live_processes_in_group(pgid):
        assert time.monotonic() < deadline, f"left running: {_live_processes_in_group(pgid)}"
        time.sleep(0.2)


def _stop_line(stderr: str, name: str) -> tuple[int, str]:
    """The step and the resume command from the run's one stop line."""
    lines = [line for line in stderr.splitlines() if line.startswith("stopped by")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    head, command = lines[0].split("; resume with: ")
    assert head.startswith(f"stopped by {name} at step "), lines[0]
    return int(head.split(" at step ")[1].split()[0]), command


def test_ctrl_c_checkpoints_stops_the_workers_and_prints_a_command_that_resumes(workdir):
    with _Run(workdir, ["--data", "export", "--out", "my run", "--steps", "100000", "--workers", "1",
                        *TINY_RUN]) as run:
        run.wait_for_line("pretrain step ")
        os.killpg(run.process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the render worker receives it too
        code, stderr = run.finish()
    assert code == 130, stderr
    _assert_group_ends(run.process.pid)
    step, command = _stop_line(stderr, "SIGINT")
    assert step >= 5
    assert load_checkpoint(workdir / "my run")["step"] == step
    words = shlex.split(command)
    assert words == ["harvest", "pretrain", "--out", "my run", "--resume", "--steps", "100000", "--data", "export",
                     "--device", "cpu"]
    assert "'my run'" in command  # quoted: copy-pasteable into a shell
    # The start line is longer than 80 columns and stays whole off a terminal.
    assert run.stdout[0].startswith("supervised resnet18") and run.stdout[0].endswith("-> my run")

    resumed = subprocess.run([*_as_python(words), "--steps", str(step + 3)], cwd=workdir, env=_cli_env(),
                             capture_output=True, text=True, timeout=DEADLINE_S)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{step + 3} steps done (from {step})" in resumed.stdout
    assert load_checkpoint(workdir / "my run")["step"] == step + 3


def test_sigterm_checkpoints_at_the_step_reached_and_exits_143(workdir):
    with _Run(workdir, ["--data", "export", "--out", "run", "--steps", "100000", "--workers", "0",
                        *TINY_RUN]) as run:
        run.wait_for_line("pretrain step ")
        run.process.send_signal(signal.SIGTERM)  # as `kill PID` or a scheduler would: the trainer only
        code, stderr = run.finish()
    assert code == 143, stderr
    step, command = _stop_line(stderr, "SIGTERM")
    assert load_checkpoint(workdir / "run")["step"] == step
    assert shlex.split(command)[:4] == ["harvest", "pretrain", "--out", "run"]
    _assert_group_ends(run.process.pid)


def test_plain_progress_lines_come_with_step_loss_and_eta(workdir):
    out = workdir / "run"
    result = CliRunner().invoke(app, ["pretrain", "--data", str(workdir / "export"), "--out", str(out), "--steps",
                                      "12", "--workers", "0", *TINY_RUN])  # in-process: its stdout is no terminal
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stdout.splitlines() if line.startswith("pretrain step ")]
    assert [line.split()[2] for line in progress] == ["5/12", "10/12", "12/12"]
    for line in progress:
        assert " img/s " in line and " loss " in line and " ETA " in line
    assert result.stdout.splitlines()[-1].startswith("12 steps done (from 0)")


def _metrics(step: int, steps: int = 100, images_per_s: float = 80.0) -> StepMetrics:
    return StepMetrics(step=step, steps=steps, loss=1.25, accuracy=0.5, lr=0.1, images_per_s=images_per_s,
                       data_wait=0.0, elapsed_s=1.0)


def test_plain_progress_every_n_steps_or_seconds_whichever_first():
    now = [0.0]
    lines: list[str] = []
    progress = PlainProgress(images_per_step=8, every_steps=10, every_s=15.0, clock=lambda: now[0],
                             write=lines.append)
    for step, at in [(5, 1), (10, 2), (12, 20), (20, 21), (22, 22), (30, 23), (100, 24)]:
        now[0] = at
        progress(_metrics(step))
    # 5: the first report; 12: 19 s since the last line; 22: 10 steps since it; 100: the last step.
    assert [line.split()[2] for line in lines] == ["5/100", "12/100", "22/100", "100/100"]
    assert lines[0] == "pretrain step 5/100  80 img/s  loss 1.2500  acc 0.500  ETA 0:00:10"


def test_step_reporter_keeps_the_live_bar_on_a_terminal():
    terminal = io.StringIO()
    with step_reporter(Console(file=terminal, force_terminal=True, width=120), 4, 8, 1) as on_step:
        assert not isinstance(on_step, PlainProgress)
        on_step(_metrics(2, steps=4))
    assert "2/4 steps" in terminal.getvalue()
    with step_reporter(Console(file=io.StringIO(), force_terminal=False), 400, 8, 5) as on_step:
        assert isinstance(on_step, PlainProgress) and on_step.every_steps == 20


def test_resume_command_quotes_and_names_the_launcher():
    passed = {"--data": Path("my data"), "--db": None, "--num-programs": 64, "--device": None}
    single = resume_command(Path("runs/a b"), 500, passed)
    assert single == "harvest pretrain --out 'runs/a b' --resume --steps 500 --data 'my data' --num-programs 64"
    assert resume_command(Path("r"), 9, {}, world_size=2, local_world_size=2) == (
        "torchrun --nproc_per_node 2 -m harvester.cli pretrain --out r --resume --steps 9")
    hostile = resume_command(Path("x; rm -rf ~"), 1, {"--data": Path("$(id)")})
    assert shlex.split(hostile)[3] == "x; rm -rf ~" and shlex.split(hostile)[-1] == "$(id)"


def test_a_real_signal_stops_the_loop_after_the_current_step(workdir):
    programs = read_export(workdir / "export")
    steps_seen = []

    def on_step(metrics: StepMetrics) -> None:
        steps_seen.append(metrics.step)
        if metrics.step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # handled by recording it: the step finishes, no exception

    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals() as stop:
        summary = run_pretraining(small_config("supervised", steps=50), workdir / "run", programs, CPU,
                                  stop=stop, on_step=on_step)
    assert summary.stopped_by == signal.SIGINT and summary.step == 3 and steps_seen == [1, 2, 3]
    assert load_checkpoint(workdir / "run")["step"] == 3
    assert signal.getsignal(signal.SIGINT) is before  # restored after the run


def test_a_kill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_atomic({"format": CHECKPOINT_FORMAT, "step": 7}, path)
    killer = (  # killed once the new file is written, before it is renamed: the worst moment
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from pretrain.checkpoints import save_atomic\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
        "save_atomic({'format': 'harvest-pretrain/1', 'step': 8, 'weights': bytes(1 << 20)}, Path(sys.argv[1]))\n"
    )
    result = subprocess.run([sys.executable, "-c", killer, str(path)], capture_output=True, timeout=DEADLINE_S)
    assert result.returncode == -signal.SIGKILL
    assert load_checkpoint(path)["step"] == 7
    leftovers = list(tmp_path.glob(".checkpoint.pt.*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 1 << 20  # the new file was written, not renamed
    save_atomic({"format": CHECKPOINT_FORMAT, "step": 9}, path)
    assert load_checkpoint(path)["step"] == 9 and not list(tmp_path.glob(".checkpoint.pt.*.tmp"))


class _SignalAfter:
    """A stop request that one rank sees filled after `reads` checks, as if only that rank got the signal."""

    def __init__(self, reads: int, signum: int) -> None:
        self.reads, self.after = 0, reads
        self.signal = signum

    @property
    def signum(self) -> int:
        self.reads += 1
        return self.signal if self.reads > self.after else 0


def _ddp_rank(rank: int, port: int, export: str, out: str, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from pretrain.distributed import init_distributed, shutdown

    env = init_distributed("cpu")
    try:
        stop = _SignalAfter(2, signal.SIGTERM) if rank == 1 else StopRequest()
        summary = run_pretraining(small_config("moco", steps=40, batch_size=8), Path(out), read_export(Path(export)),
                                  env, stop=stop)
        results.put((rank, summary.step, summary.stopped_by))
    finally:
        shutdown(env)


def test_a_signal_on_one_rank_stops_every_rank_at_the_same_step(workdir):
    context = torch.multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    out = workdir / "ddp"
    torch.multiprocessing.spawn(_ddp_rank, args=(_free_port(), str(workdir / "export"), str(out), results),
                                nprocs=2, join=True)
    finished = sorted(results.get() for _ in range(2))
    assert finished == [(0, 2, signal.SIGTERM), (1, 2, signal.SIGTERM)]
    checkpoint = load_checkpoint(out)
    assert checkpoint["step"] == 2 and checkpoint["world_size"] == 2
