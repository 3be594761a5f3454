"""Benchmark: the exam viewer bundle (static/viewer) in headless Debian Chromium, CPU rendering.

Serves the built bundle and a real Orthanc DICOMweb server from one loopback origin (the same
machinery as tests/frontend) and prints, per US file:

* first frame drawn, ms from navigation start (module import + metadata + frame + decode +
  draw: what a reviewer waits for) — the first load with an empty browser cache ("cold") and the
  median of the following loads with the bundle cached ("warm");
* of which importing the bundle (navigation start → module evaluated and mount called);
* first frame drawn, ms after ``mountExamViewer`` (metadata + frame + decode + draw);
* cine playback rate (frames actually drawn per second) against the file's Frame Time.

Target (issue 8): the first frame of an exam shows in ≤ 1 s on localhost. The review page's own
benchmark measures it through the Django site; this one isolates the bundle.

Usage: ``python bench/bench_viewer.py [--loads N] [--cine-seconds S]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "frontend"))

from viewer_support import launch_chromium, open_viewer, run_orthanc, serve_site  # noqa: E402

FILES = {
    "examples_ybr_color.dcm (JPEG, 320x240, 30 frames)": "examples_ybr_color.dcm",
    "US1_UNCR.dcm (native RGB, 640x480)": "US1_UNCR.dcm",
    "US1_J2KR.dcm (JPEG 2000, 640x480)": "US1_J2KR.dcm",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=6, help="page loads per file (first is cold)")
    parser.add_argument("--cine-seconds", type=float, default=3.0)
    args = parser.parse_args()

    with (
        run_orthanc(FILES) as orthanc,
        serve_site(orthanc.http_port) as site,
        launch_chromium() as browser,
    ):
        print(f"chromium {browser.version}, CPU rendering, loopback; {args.loads} loads per file")
        print(
            f"{'file':<52} {'cold nav→frame':>15} {'warm nav→frame':>15} {'import':>8} {'mount→frame':>12}"
        )
        for label in FILES:
            inst = orthanc.instances[label]
            context = browser.new_context(viewport={"width": 900, "height": 760})
            nav, mount, imported = [], [], []
            try:
                for _ in range(args.loads):
                    page = context.new_page()
                    event = open_viewer(page, site, inst)
                    if event["type"] != "ready":
                        raise SystemExit(f"{label}: viewer failed: {event['detail']}")
                    nav.append(event["detail"]["sinceNavigationMs"])
                    mount.append(event["detail"]["firstRenderMs"])
                    imported.append(page.evaluate("() => window.viewerMountedAt"))
                    if inst.frames > 1 and len(nav) == args.loads:
                        page.evaluate("() => window.viewer.play()")
                        page.wait_for_timeout(args.cine_seconds * 1000)
                        state = page.evaluate("() => window.viewer.getState()")
                        page.evaluate("() => window.viewer.pause()")
                        fps = state["cineFramesShown"] / state["cineSeconds"]
                        cine = f"cine {fps:.1f} fps drawn (file: {1000 / state['frameTimeMs']:.1f} fps)"
                    page.close()
            finally:
                context.close()
            warm = statistics.median(nav[1:]) if len(nav) > 1 else float("nan")
            print(
                f"{label:<52} {nav[0]:>12.0f} ms {warm:>12.0f} ms"
                f" {statistics.median(imported):>5.0f} ms {statistics.median(mount):>9.0f} ms"
            )
            if inst.frames > 1:
                print(f"{'':<52} {cine}")


if __name__ == "__main__":
    main()
