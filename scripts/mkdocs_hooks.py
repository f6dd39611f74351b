"""MkDocs hooks (mkdocs.yml ``hooks:``): the site reads the repository as GitHub does.

- The site's front page (``index.md``) is README.md itself, its ``docs/PAGE``
  links made ``PAGE``: one text, shown in both places.
- A page may link or show a repository file outside docs/ by its relative path
  (``../bench/results/compare.png``), which works on GitHub; the site serves
  such a file from ``_repo/PATH`` and the link is pointed there. A link to
  ``../README.md`` goes to the front page. A relative link to a file that does
  not exist is left alone, so ``mkdocs build --strict`` still fails on it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

#: Where repository files outside docs/ that pages link are served in the site.
REPO_DIR = "_repo"
FRONT_PAGE = "index.md"

# ](TARGET) with TARGET a path, an optional #anchor and no scheme.
_LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:)([^)\s#]+)(#[^)\s]*)?\)")


def _outside_code(text: str, fix: Callable[[re.Match[str]], str]) -> str:
    """``text`` with ``fix`` (a function of a link match) applied to the
    links outside fenced code blocks."""
    out, fence = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fence = not fence
            out.append(line)
        else:
            out.append(line if fence else _LINK.sub(fix, line))
    return "".join(out)


def _repo_root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def _outside_target(config: MkDocsConfig, src_uri: str, link: str) -> str | None:
    """The repository path (POSIX, from the root) a page's relative link names,
    if it leaves docs/ and is a file of the repository; else None."""
    if link.startswith("/"):
        return None
    docs = Path(config.docs_dir).resolve()
    target = (docs / posixpath.dirname(src_uri) / link).resolve()
    root = _repo_root(config)
    if target.is_relative_to(docs) or not target.is_relative_to(root) or not target.is_file():
        return None
    return target.relative_to(root).as_posix()


def front_page(readme: str) -> str:
    """README.md as a page of docs/: ``docs/X`` links become ``X``, other
    relative links ``../X`` (then served as any page's link outside docs/)."""

    def fix(m: re.Match[str]) -> str:
        path, anchor = m.group(1), m.group(2) or ""
        path = path.removeprefix("docs/") if path.startswith("docs/") else f"../{path}"
        return f"]({path}{anchor})"

    return _outside_code(readme, fix)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    readme = _repo_root(config) / "README.md"
    files.append(File.generated(config, FRONT_PAGE, content=front_page(readme.read_text())))
    served: set[str] = set()
    for page in list(files.documentation_pages()):
        for m in _LINK.finditer(page.content_string):
            rel = _outside_target(config, page.src_uri, m.group(1))
            if rel is None or rel == "README.md" or rel in served:
                continue
            served.add(rel)
            path = str(_repo_root(config) / rel)
            files.append(File.generated(config, f"{REPO_DIR}/{rel}", abs_src_path=path))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    here = posixpath.dirname(page.file.src_uri)

    def fix(m: re.Match[str]) -> str:
        rel = _outside_target(config, page.file.src_uri, m.group(1))
        if rel is None:
            return m.group(0)
        dest = FRONT_PAGE if rel == "README.md" else f"{REPO_DIR}/{rel}"
        return f"]({posixpath.relpath(dest, here or '.')}{m.group(2) or ''})"

    return _outside_code(markdown, fix)
