"""What the event history costs a tick: one batched store update with a full history (1000 events).

Prints the median and p99 wall time of ``EventLog.flush`` for batches of 1 and 5 events into
a state file already holding ``KEEP`` events (each flush rewrites the file: write, fsync,
rename), and the file's size. Usage: python bench/events.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from repman.watcher.events import KEEP, EventLog  # noqa: E402
from repman.watcher.state_store import StateStore  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(Path(tmp))
        log = EventLog("bench", store)
        for i in range(KEEP):
            log.emit("info", "state", f"server 127.0.0.1:{3306 + i % 3}: Slave -> Suspect",
                     {"server": f"127.0.0.1:{3306 + i % 3}", "from": "Slave", "to": "Suspect"})
        log.flush()
        for batch in (1, 5):
            seconds = []
            for _ in range(args.runs):
                for i in range(batch):
                    log.emit("warning", "decision", f"master 127.0.0.1:3306 failed {i}/3 pings", {"rule": "x"})
                t0 = time.perf_counter()
                log.flush()
                seconds.append(time.perf_counter() - t0)
            seconds.sort()
            p99 = seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))]
            print(f"flush of {batch} event(s) into a history of {KEEP}: "
                  f"median {statistics.median(seconds) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms ({args.runs} runs)")
        print(f"state.json with {len(store.load().events)} events: {store.path.stat().st_size / 1024:.0f} KiB")
        t0 = time.perf_counter()
        for _ in range(50):
            store.load()
        print(f"load (what a stream poll or `repman events` reads): {(time.perf_counter() - t0) / 50 * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
