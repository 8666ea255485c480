"""A RabbitMQ node of the test's own (Debian's rabbitmq-server, its data under the test's
folder, free ports), for what must not be done to the machine's shared broker: killing it."""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kombu import Connection

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")  # not the wrapper that switches user


def _free_port() -> int:
    # Not in 35672-35682: RabbitMQ's command-line tools take those for themselves.
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if not 35_000 <= port <= 36_000:
            return port


class RabbitNode:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port, self.dist_port = _free_port(), _free_port()
        self.name = f"dctest{os.getpid()}{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        root.mkdir(parents=True, exist_ok=True)
        (root / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nconsumer_timeout = 7200000\n")
        (root / "enabled_plugins").write_text("[].\n")
        self._process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 90.0) -> None:
        env = os.environ | {
            "RABBITMQ_NODENAME": self.name, "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PID_FILE": str(self.root / "node.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq"),
            "ERL_EPMD_ADDRESS": "127.0.0.1"}
        with open(self.root / "server.log", "ab") as log:
            self._process = subprocess.Popen([str(SERVER)], env=env, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with Connection(self.url, connect_timeout=2) as connection:
                    connection.ensure_connection(max_retries=1)
                return
            except Exception:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    log = (self.root / "server.log").read_text()[-2000:]
                    raise RuntimeError(f"the test's RabbitMQ node did not start: {log}") from None
                time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL, as a crash: what was confirmed must survive it."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None


@contextmanager
def rabbitmq_node(root: Path) -> Iterator[RabbitNode]:
    node = RabbitNode(root)
    node.start()
    try:
        yield node
    finally:
        node.kill()
