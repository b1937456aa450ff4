#!/usr/bin/env python3
"""Runs the test phase under a watchdog (used by scripts/test).

    watchdog.py --budget SECONDS --grace SECONDS --log FILE -- COMMAND...

The command's output goes to the terminal and, whole, to FILE. Test starts and ends are read
from Swift Testing's lines ("Test x() started.", "... passed after", "... failed after"). The
run is stopped when
  - the budget is spent, or
  - a test went past its `.timeLimit` ("Time limit was exceeded") and the process has not
    ended GRACE seconds later (a time limit records an issue but cannot end a stuck task).
Then the watchdog prints the unfinished tests, a stack dump of every thread of every process
of the run (gdb), kills the run and exits 124. Otherwise it exits with the command's status.
At the end it names the log file and lists the failed tests.
"""
import argparse
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time

STARTED = re.compile(r"Test (.+?) started\.$")
ENDED = re.compile(r"Test (.+?) (passed|failed|skipped)(?: after [0-9.]+ seconds|\.$| with )")
ISSUE = re.compile(r"Test (.+?) recorded an issue")
TIME_LIMIT = "Time limit was exceeded"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SUMMARY = re.compile(r"Test run with \d+ tests?")


class Progress:
    def __init__(self):
        self.lock = threading.Lock()
        self.running = {}  # name -> count started and not ended
        self.failed = []
        self.issues = set()
        self.limit_exceeded_at = None
        self.limit_lines = []

    def line(self, text):
        with self.lock:
            if SUMMARY.search(text):
                return
            match = STARTED.search(text)
            if match and match.group(1) != "run":
                name = match.group(1)
                self.running[name] = self.running.get(name, 0) + 1
                return
            match = ISSUE.search(text)
            if match:
                self.issues.add(match.group(1))
                if TIME_LIMIT in text:
                    if self.limit_exceeded_at is None:
                        self.limit_exceeded_at = time.monotonic()
                    self.limit_lines.append(text.strip())
                return
            match = ENDED.search(text)
            if match:
                name = match.group(1)
                if self.running.get(name):
                    self.running[name] -= 1
                    if self.running[name] == 0:
                        del self.running[name]
                if match.group(2) == "failed" and name not in self.failed:
                    self.failed.append(name)
                return

    def unfinished(self):
        with self.lock:
            return sorted(self.running)


def descendants(root):
    """Pids of `root` and every process below it (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def dump_stacks(root, out):
    """gdb dumps, the test binary first; at most 80 s in all so the run ends within 2 minutes."""
    deadline = time.monotonic() + 80
    pids = sorted(descendants(root), key=lambda pid: ".xctest" not in command_line(pid))
    for pid in pids:
        left = deadline - time.monotonic()
        if left < 5:
            out(f"watchdog: no time left for a stack dump of pid {pid}: {command_line(pid)[:200]}")
            continue
        out(f"watchdog: stack dump of pid {pid}: {command_line(pid)[:200]}")
        try:
            dump = subprocess.run(
                ["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                capture_output=True, text=True, timeout=left)
            for text in dump.stdout.splitlines():
                out("  " + text)
        except FileNotFoundError:
            out("watchdog: gdb is not installed; no stack dump")
            return
        except subprocess.TimeoutExpired:
            out(f"watchdog: gdb did not finish on pid {pid}; skipped")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--grace", type=float, default=30)
    parser.add_argument("--log", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command

    log = open(options.log, "a", buffering=1)
    write_lock = threading.Lock()

    def out(text):
        with write_lock:
            print(text, flush=True)
            log.write(text + "\n")

    progress = Progress()
    started = time.monotonic()
    # The run writes to a pseudo-terminal: into a pipe its output would be block-buffered, and
    # the lines a stuck run wrote last (which test started, the time limit) would never arrive.
    master, slave = pty.openpty()
    environment = dict(os.environ, NO_COLOR="1")
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                             start_new_session=True, env=environment)
    os.close(slave)

    def pump():
        pending = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has gone
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                text = ANSI.sub("", raw.decode(errors="replace")).replace("\r", "")
                out(text)
                progress.line(text)
        if pending:
            text = ANSI.sub("", pending.decode(errors="replace")).replace("\r", "")
            out(text)
            progress.line(text)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def stop_all(signum, frame):
        for pid in reversed(descendants(child.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        sys.exit(130)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    reason = None
    while child.poll() is None:
        time.sleep(1)
        elapsed = time.monotonic() - started
        if elapsed > options.budget:
            reason = f"the test phase ran past its budget of {options.budget:.0f} s"
        elif progress.limit_exceeded_at is not None and time.monotonic() - progress.limit_exceeded_at > options.grace:
            reason = (f"a test exceeded its time limit and the process had not ended {options.grace:.0f} s later "
                      f"({progress.limit_lines[0]})")
        if reason:
            break

    if reason:
        out("")
        out(f"watchdog: stopping the run: {reason}")
        unfinished = progress.unfinished()
        out(f"watchdog: unfinished tests ({len(unfinished)}):")
        for name in unfinished:
            out(f"  {name}")
        dump_stacks(child.pid, out)
        # swift test runs the test binary in a process group of its own: kill every process of
        # the run by pid (collected before any of them dies and their children are re-parented).
        for pid in reversed(descendants(child.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()
        status = 124
    else:
        status = child.returncode
    reader.join(timeout=10)

    failed = progress.failed
    out("")
    out(f"scripts/test: test phase took {time.monotonic() - started:.1f} s")
    out(f"scripts/test: full log in {options.log}")
    if failed:
        out(f"scripts/test: failed tests ({len(failed)}):")
        for name in failed:
            out(f"  {name}")
    if reason:
        out(f"scripts/test: FAILED: {reason}; unfinished: {', '.join(progress.unfinished()) or 'none'}")
    elif status != 0:
        out(f"scripts/test: FAILED (exit {status})")
    return status


if __name__ == "__main__":
    sys.exit(main())
