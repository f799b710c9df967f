"""A minimal manifest route of a registry, counting every manifest it serves with PullSketch.

Serves `GET` and `HEAD /v2/<repository>/manifests/<tag or digest>` with one fixed manifest and
records each successful request, as a registry's manifest handler would right after it answered.
Run it with gunicorn and `gunicorn.conf.py`, which opens the tracker in each worker after the fork.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Callable, Iterable, Optional

import pullsketch

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
ROUTE = re.compile(r"^/v2/(?P<repository>.+)/manifests/(?P<reference>[^/]+)$")

tracker: Optional[pullsketch.Tracker] = None


def open_tracker() -> None:
    """Opens this process's tracker from $PULLSKETCH_CONFIG (a path or YAML text)."""
    global tracker
    tracker = pullsketch.Tracker(os.environ["PULLSKETCH_CONFIG"])


def close_tracker() -> None:
    if tracker is not None:
        tracker.close()


def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
    match = ROUTE.match(environ.get("PATH_INFO", ""))
    method = environ.get("REQUEST_METHOD", "")
    if match is None or method not in ("GET", "HEAD"):
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [
        ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
        ("Docker-Content-Digest", DIGEST),
        ("Content-Length", str(len(MANIFEST))),
    ])
    if tracker is not None:
        reference = match["reference"]
        by_digest = ":" in reference
        # The result is a code, never an exception: tracking cannot fail the request.
        tracker.record(
            match["repository"],
            tag=None if by_digest else reference,
            digest=reference if by_digest else None,
            method=method,
            served_digest=DIGEST,
        )
    return [MANIFEST if method == "GET" else b""]
