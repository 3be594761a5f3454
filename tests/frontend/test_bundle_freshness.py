"""The committed viewer bundle (static/viewer) was built from the committed frontend sources."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FRONTEND = REPO_ROOT / "frontend"
BUNDLE = REPO_ROOT / "static" / "viewer"
# keep in step with DIGEST_INPUTS in frontend/vite.config.js
DIGEST_INPUTS = ["src", "public", "package.json", "package-lock.json", "vite.config.js"]


def sources_digest() -> tuple[str, list[str]]:
    files: list[str] = []
    for name in DIGEST_INPUTS:
        path = FRONTEND / name
        found = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        files += [p.relative_to(FRONTEND).as_posix() for p in found]
    files.sort()
    h = hashlib.sha256()
    for rel in files:
        h.update(f"{rel}\n".encode())
        h.update(f"{hashlib.sha256((FRONTEND / rel).read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest(), files


def test_committed_bundle_matches_the_frontend_sources():
    info = json.loads((BUNDLE / "build-info.json").read_text())
    digest, files = sources_digest()
    assert files == info["files"], "frontend files differ from the last build: run `make viewer`"
    assert digest == info["sourcesSha256"], (
        "static/viewer is older than frontend/ sources: rebuild with `make viewer` "
        "(cd frontend && npm ci && npm run build) and commit static/viewer"
    )


def test_bundle_files_stay_under_the_repository_size_limit():
    sizes = {
        p.relative_to(BUNDLE).as_posix(): p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file()
    }
    assert "viewer.js" in sizes and "harness.html" in sizes
    too_big = {name: size for name, size in sizes.items() if size >= 10 * 1024 * 1024}
    assert not too_big, f"bundle files of 10 MB or more: {too_big}"
    assert sum(sizes.values()) < 12 * 1024 * 1024, f"bundle grew to {sum(sizes.values())} bytes"
