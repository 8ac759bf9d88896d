"""A real Ray cluster of several nodes on this machine, started with `ray start` as a user would.

Each node is one `ray start` (the head, then `ray start --address HEAD`) with a temp dir and ports of its
own, picked free, so two runs on one machine do not collide. Each `ray start` runs in a new session:
every process of that node, the workers its raylet spawns included, keeps that session id, which is how
`stop` finds exactly this cluster's processes. `ray stop` would stop every Ray on the machine, other
tests' included. Token authentication is on with a token of this cluster's own
(`RAY_AUTH_TOKEN_PATH`), so nothing under ~/.ray is read or written.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

RAY_START_TIMEOUT_S = 180.0
QUERY_TIMEOUT_S = 120.0
STOP_GRACE_S = 3.0  # then SIGKILL: a test cluster has nothing to save
KILL_WAIT_S = 30.0
WORKER_PORTS_PER_NODE = 16
# One CPU per node, so two one-CPU actors can only run on two different nodes.
CPUS_PER_NODE = 1

# The ports every node needs; the head needs the GCS and Ray Client ports and the dashboard's too.
NODE_PORT_FLAGS = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                   "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")
HEAD_PORT_FLAGS = ("--port", "--ray-client-server-port", "--dashboard-port")

# Run by a fresh interpreter: which nodes are alive, and on which node each actor was placed.
_QUERY = """
import json, sys
import ray
import ray._private.state as state
ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, logging_level="ERROR")
nodes = [{"id": n["NodeID"], "alive": n["Alive"], "cpus": n["Resources"].get("CPU", 0)} for n in ray.nodes()]
actors = [{"class": a["ActorClassName"], "node": a["Address"]["NodeID"], "state": a["State"]}
          for a in state.actors().values()]
print(json.dumps({"nodes": nodes, "actors": actors}))
"""


class ClusterStartError(RuntimeError):
    """`ray start` failed or did not finish: the environment cannot run a cluster (callers skip)."""


@dataclass(frozen=True)
class ClusterState:
    alive_node_ids: frozenset[str]
    cpus: float
    actor_nodes: dict[str, frozenset[str]]  # actor class name -> ids of the nodes it ran on


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that are free now (held open together, so none is handed out twice)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def ray_command() -> Path:
    """The `ray` command of the interpreter running this code."""
    beside = Path(sys.executable).with_name("ray")
    found = beside if beside.exists() else shutil.which("ray")
    if not found:
        raise ClusterStartError("no `ray` command beside this Python or on PATH")
    return Path(found)


def _session_of(pid_dir: Path) -> int | None:
    try:
        fields = (pid_dir / "stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[3])  # a zombie holds nothing: it is gone already


def session_processes(session: int) -> list[int]:
    """Live processes whose session id is `session`."""
    return [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and _session_of(d) == session]


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _wait_gone(sessions: list[int], within_s: float) -> list[int]:
    """The processes of `sessions` still alive after waiting up to `within_s` for them to exit."""
    stop_by = time.monotonic() + within_s
    while True:
        left = [pid for session in sessions for pid in session_processes(session)]
        if not left or time.monotonic() >= stop_by:
            return left
        time.sleep(0.2)


@dataclass
class LocalRayCluster:
    """`nodes` Ray nodes on this machine. Use as a context manager: leaving it stops every process it started."""

    nodes: int = 2
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hrc-")))  # short: Ray's socket paths
    address: str = ""
    sessions: list[int] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        token = self.root / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        # What every `ray start` and every driver of this cluster needs in its environment.
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        head_port, client_port, dashboard_port = free_ports(len(HEAD_PORT_FLAGS))
        self.address = f"127.0.0.1:{head_port}"
        self._start_node("head", ["--head", "--port", str(head_port), "--ray-client-server-port", str(client_port),
                                  "--dashboard-port", str(dashboard_port), "--include-dashboard=false"])
        for index in range(1, self.nodes):
            self._start_node(f"node{index}", ["--address", self.address])

    def _start_node(self, name: str, role_args: list[str]) -> None:
        ports = free_ports(len(NODE_PORT_FLAGS) + WORKER_PORTS_PER_NODE)
        node_ports = [arg for flag, port in zip(NODE_PORT_FLAGS, ports) for arg in (flag, str(port))]
        worker_ports = ",".join(map(str, ports[len(NODE_PORT_FLAGS):]))
        command = [str(ray_command()), "start", *role_args, "--temp-dir", str(self.root / name),
                   "--num-cpus", str(CPUS_PER_NODE), "--num-gpus", "0", "--disable-usage-stats",
                   *node_ports, "--worker-port-list", worker_ports]
        process = subprocess.Popen(command, env=os.environ | self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.sessions.append(process.pid)  # before waiting: a failed start may leave processes behind
        try:
            output, _ = process.communicate(timeout=RAY_START_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate()
            raise ClusterStartError(f"`ray start` for {name} did not finish in {RAY_START_TIMEOUT_S:g} s") from exc
        if process.returncode != 0:
            last = [line for line in output.splitlines() if line.strip()][-1:] or ["(no output)"]
            raise ClusterStartError(f"`ray start` for {name} failed ({process.returncode}): {last[0][:300]}")

    def state(self) -> ClusterState:
        """The cluster's alive nodes and where its actors (dead ones included) were placed, asked from a new driver."""
        done = subprocess.run([sys.executable, "-c", _QUERY, self.address], env=os.environ | self.env,
                              capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, check=True)
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        alive = [node for node in answer["nodes"] if node["alive"]]
        placed: dict[str, set[str]] = {}
        for actor in answer["actors"]:
            placed.setdefault(actor["class"], set()).add(actor["node"])
        return ClusterState(alive_node_ids=frozenset(n["id"] for n in alive), cpus=sum(n["cpus"] for n in alive),
                            actor_nodes={name: frozenset(ids) for name, ids in placed.items()})

    def processes(self) -> list[int]:
        return [pid for session in self.sessions for pid in session_processes(session)]

    def stop(self) -> None:
        """Stop this cluster's processes (TERM, then KILL after a grace period) and remove its temp dir."""
        _signal_all(self.processes(), signal.SIGTERM)
        _signal_all(_wait_gone(self.sessions, STOP_GRACE_S), signal.SIGKILL)
        left = _wait_gone(self.sessions, KILL_WAIT_S)
        shutil.rmtree(self.root, ignore_errors=True)
        if left:
            raise RuntimeError(f"Ray processes {left} outlived SIGKILL")
