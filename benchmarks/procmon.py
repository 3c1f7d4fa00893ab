"""Peak resident memory (RSS) of process trees, read from /proc while they run.

An RQ worker forks a "work horse" child for every job, and the job's memory peak is in that child,
which lives only while the job runs. So the peak of a worker is the largest peak of any process in
its tree: the worker itself, its work horses and its scheduler.

`PeakRss` polls every `interval` seconds from a background thread. For every root it finds the
descendants (psutil, as the tests do) and reads VmHWM from /proc/<pid>/status: the "high water
mark", the largest RSS the process has had so far, kept by the kernel (psutil does not report
it). Because VmHWM is already a peak, a child is measured correctly as long as it is seen once
before it exits; only what it grows in its last `interval` seconds could be missed.

    with PeakRss({"ingest-1": proc.pid}) as rss:
        ...                      # the work
    rss.peaks["ingest-1"]        # bytes
"""

import threading
from pathlib import Path

import psutil


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it ([] if it is gone)."""
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:  # gone, or not ours to read
        return []


def high_water_mark(pid: int) -> int:
    """Peak RSS of `pid` so far, in bytes (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # the kernel reports kB
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU seconds `pid` has used so far (0 if it is gone); with `children`, also its
    children that exited and were waited for (an RQ worker waits for each work horse it forks)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:  # gone, or not ours to read
        return 0.0
    own = times.user + times.system
    return own + (times.children_user + times.children_system if children else 0.0)


class PeakRss:
    """Largest VmHWM seen in each named process tree while the `with` block runs."""

    def __init__(self, roots: dict[str, int], interval: float = 0.05):
        self.roots = roots
        self.interval = interval
        self.peaks = dict.fromkeys(roots, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="peak-rss", daemon=True)

    def sample(self) -> None:
        for name, root in self.roots.items():
            for pid in descendants(root):
                self.peaks[name] = max(self.peaks[name], high_water_mark(pid))

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
