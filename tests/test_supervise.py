"""scripts/supervise.sh, which keeps the demo's worker running: restarts, logs, gives up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUPERVISE = ROOT / "scripts" / "supervise.sh"


def children_of(pid: int) -> list[int]:
    pids: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        pids += [int(p) for p in path.read_text().split()]
    return pids


def commands_of(pid: int, argv: list[str]) -> list[int]:
    """The children of ``pid`` running exactly ``argv`` (not the supervisor's helpers)."""
    wanted = "\0".join(argv) + "\0"
    found = []
    for child in children_of(pid):
        try:
            if Path(f"/proc/{child}/cmdline").read_text() == wanted:
                found.append(child)
        except OSError:
            continue
    return found


def wait_until(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_command_that_exits_is_restarted_and_logged(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    supervisor = subprocess.Popen(
        ["bash", str(SUPERVISE), str(log), "sleep", "30"],
        env={**os.environ, "SUPERVISE_DELAY": "0"},
        stderr=subprocess.PIPE,
    )
    try:
        # The supervisor also runs short helpers (date, sleep 0): watch the command only.
        wait_until(lambda: len(commands_of(supervisor.pid, ["sleep", "30"])) == 1)
        first = commands_of(supervisor.pid, ["sleep", "30"])[0]
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: commands_of(supervisor.pid, ["sleep", "30"]) not in ([], [first]))
        # How long it ran is whole seconds by the clock: 0 or 1 for a command killed at
        # once, depending on where the second turned.
        assert re.search(
            r"sleep exited with status 137 after [01] s; restarting in 0 s", log.read_text()
        ), log.read_text()
        second = commands_of(supervisor.pid, ["sleep", "30"])[0]
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(10) == 0
    # Stopping the supervisor stops what it runs.
    wait_until(lambda: not Path(f"/proc/{second}").exists() or _is_zombie(second))


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_command_that_keeps_dying_at_start_stops_everything_loudly(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    demo = subprocess.Popen(["sleep", "60"])  # stands in for the demo's web server
    try:
        result = subprocess.run(
            ["bash", str(SUPERVISE), str(log), "sh", "-c", "echo boom; exit 3"],
            env={
                **os.environ,
                "SUPERVISE_DELAY": "0",
                "SUPERVISE_MAX_QUICK_EXITS": "3",
                "SUPERVISE_STOP_PID": str(demo.pid),
            },
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        text = log.read_text()
        assert text.count("boom") == 3
        assert text.count("sh exited with status 3") == 2
        assert "sh exited 3 times in a row within 10 s (last status 3); giving up" in text
        assert "giving up" in result.stderr
        assert demo.wait(10) == -signal.SIGTERM
    finally:
        if demo.poll() is None:
            demo.kill()
