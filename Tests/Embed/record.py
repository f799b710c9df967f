"""The Python twin of record.c, through the installed `pullsketch` package:
    python record.py CONFIG PROCESS THREADS PULLS
Thread t records PULLS pulls into repository embed/c<PROCESS>, pull i by tag v<i % 20>, a GET
unless i % 3 == 0 (a HEAD); a forked child is refused the parent's tracker, then records 100 GETs
of tag "child" with its own. Exits 0 when every call answered as expected."""

import os
import sys
import threading

import pullsketch
from pullsketch import Result

config, process, threads, pulls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
repository = f"embed/c{process}"
digest = "sha256:" + "4" * 64
failures = []


def expect(answered, wanted, what):
    if answered != wanted:
        failures.append(f"{what}: {answered!r} ({answered.description}), not {wanted!r}")


tracker = pullsketch.Tracker(config)
expect(tracker.record("Embed/Upper", tag="v1"), Result.INVALID_REPOSITORY, "upper-case repository")
expect(tracker.record(repository, tag="v 1"), Result.INVALID_TAG, "tag with a space")
expect(tracker.record(repository, digest="sha256:short"), Result.INVALID_DIGEST, "short digest")
expect(tracker.record(repository, tag="v1", method="DELETE"), Result.INVALID_METHOD, "DELETE")
expect(tracker.record(repository), Result.NO_REFERENCE, "no reference")
expect(tracker.record(repository, tag="v1", time_ms=-1), Result.INVALID_TIME, "negative time")
try:
    pullsketch.Tracker("PULLSKETCH: {shards: 3}")
    failures.append("a configuration with 3 shards and 8 stripes was accepted")
except pullsketch.PullSketchError as error:
    if "stripes" not in str(error):
        failures.append(f"unclear configuration error: {error}")

child = os.fork()
if child == 0:
    refused = tracker.record(repository, tag="child") == Result.FORKED
    own = pullsketch.Tracker(config)
    recorded = all(own.record(repository, tag="child", served_digest=digest) == Result.OK for _ in range(100))
    os._exit(0 if refused and recorded and own.close() == Result.OK else 1)
_, status = os.waitpid(child, 0)
if os.waitstatus_to_exitcode(status) != 0:
    failures.append("the forked child was not refused, or could not record with its own tracker")


def record_pulls():
    for i in range(pulls):
        expect(tracker.record(repository, tag=f"v{i % 20}", method="HEAD" if i % 3 == 0 else "GET"), Result.OK, "a pull")


workers = [threading.Thread(target=record_pulls) for _ in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
expect(tracker.close(), Result.OK, "close")
expect(tracker.record(repository, tag="v1"), Result.INVALID_HANDLE, "a closed tracker")
print("\n".join(failures[:10]), file=sys.stderr)
sys.exit(1 if failures else 0)
