"""Faults injected into the Ray workers of tests/scale (their `worker_process_setup_hook`).

A video whose source file has a `<stem>.crash` file beside it kills the worker process preparing it
(``os._exit``); one with a `<stem>.raise` file raises an exception `process_video` does not catch. Removing
the marker file makes the video prepare normally, so a rerun shows the run is resumable.
"""

from __future__ import annotations

import os


def install() -> None:
    """Wrap `toolkit.prepare.plan_geometry` (the first step of every video) with the faults."""
    import toolkit.prepare as prepare

    real = prepare.plan_geometry

    def faulty(sv, *args, **kwargs):
        marker = sv.path.with_suffix("")
        if marker.with_suffix(".crash").exists():
            os._exit(3)
        if marker.with_suffix(".raise").exists():
            raise KeyError(f"injected fault for {sv.video_id}")
        return real(sv, *args, **kwargs)

    prepare.plan_geometry = faulty
