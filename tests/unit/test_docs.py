"""The documentation site builds, and every link of the README and docs/ lands.

- ``mkdocs build --strict`` (what ``make docs`` runs) succeeds: mkdocs.yml makes
  a missing page or anchor, an absolute link and a page left out of the nav
  warnings, and --strict fails on any warning; a copy with a broken anchor
  must fail, so the check can fail.
- Every relative link of README.md and docs/*.md names a file of the
  repository and, with ``#anchor``, a heading of that page as GitHub names
  it: the links work when the files are read on GitHub, not only on the site
  (whose anchors mkdocs checks with its own naming).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
#: What a build of the site reads.
SITE_SOURCES = ("mkdocs.yml", "README.md", "docs", "scripts/mkdocs_hooks.py", "bench/results")
BUILD_TIMEOUT_S = 120

_FENCE = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{1,6} (.+?)\s*#*$", re.MULTILINE)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:")


def without_code(text: str) -> str:
    return _FENCE.sub("", text)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its text, lower case, punctuation
    dropped, each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page (a repeated heading gets -1, -2, ...)."""
    out: set[str] = set()
    for heading in _HEADING.findall(without_code(page.read_text())):
        base = anchor = github_anchor(heading)
        n = 0
        while anchor in out:
            n += 1
            anchor = f"{base}-{n}"
        out.add(anchor)
    return out


def relative_links(page: Path) -> list[str]:
    return [
        url
        for url in _LINK.findall(without_code(page.read_text()))
        if not _SCHEME.match(url) and not url.startswith("/")
    ]


def test_there_are_pages_and_links() -> None:
    assert len(PAGES) >= 10, PAGES
    readme_links = relative_links(REPO / "README.md")
    assert sum(link.startswith("docs/") for link in readme_links) >= 10, readme_links


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_relative_link_lands(page: Path) -> None:
    broken = []
    for url in relative_links(page):
        path, _, anchor = url.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.is_relative_to(REPO) or not target.exists():
            broken.append(f"{url}: no file {target}")
        elif anchor and (target.suffix != ".md" or anchor not in anchors(target)):
            broken.append(f"{url}: no heading #{anchor} in {target.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}:\n" + "\n".join(broken)


def mkdocs_build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mkdocs", reason="mkdocs is in the dev extra that make test installs")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )


def test_the_site_builds_with_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    build = mkdocs_build(REPO, site)
    assert build.returncode == 0, build.stderr
    assert "WARNING" not in build.stderr, build.stderr
    built = {p.parent.name for p in site.glob("*/index.html")}
    missing = {p.stem for p in DOCS.glob("*.md")} - built
    assert not missing, f"pages not in the site: {missing}"
    front = (site / "index.html").read_text()
    assert "A five-minute tour" in front, "the front page should be the README"


def test_a_broken_anchor_fails_the_build(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for name in SITE_SOURCES:
        src, dst = REPO / name, root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
    with (root / "docs" / "errors.md").open("a") as f:
        f.write("\nSee [nothing](architecture.md#no-such-heading).\n")
    build = mkdocs_build(root, tmp_path / "site")
    assert build.returncode != 0, "a link to a missing anchor must fail the strict build"
    assert "no-such-heading" in build.stderr, build.stderr
