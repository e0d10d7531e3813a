"""Project set-up: environment.yml and pyproject.toml list the same dependencies."""

from __future__ import annotations

import re
import tomllib

from conftest import REPO

# conda names that differ from the PyPI names
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _env_deps() -> tuple[set[str], set[str]]:
    conda, pip, in_pip, in_deps = set(), set(), False, False
    for line in (REPO / "environment.yml").read_text().splitlines():
        s = line.split("#", 1)[0].rstrip()
        if not s.strip():
            continue
        if not s.startswith(" ") and not s.startswith("-"):  # a top-level key
            in_deps = s.startswith("dependencies:")
            continue
        if not in_deps:
            continue
        if re.match(r"^\s*-\s*pip:\s*$", s):
            in_pip = True
            continue
        m = re.match(r"^(\s*)-\s*(.+)$", s)
        if not m:
            in_pip = False if not s.startswith(" ") else in_pip
            continue
        item = m.group(2).strip()
        if in_pip and len(m.group(1)) > 2:
            if not item.startswith("-e"):
                pip.add(_name(item))
        else:
            in_pip = False
            conda.add(CONDA_TO_PYPI.get(_name(item), _name(item)))
    return conda, pip


def test_environment_matches_pyproject():
    py = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = {_name(d) for d in py["dependencies"]} | {_name(d) for d in py["optional-dependencies"]["test"]}
    conda, pip = _env_deps()
    env = (conda | pip) - {"python", "pip"}
    assert env == deps, f"only in environment.yml: {sorted(env - deps)}; only in pyproject.toml: {sorted(deps - env)}"
    assert "python=3.11" in (REPO / "environment.yml").read_text()


def test_torch_pins():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.14.1" in deps and "torchvision==0.29.1" in deps
    env = (REPO / "environment.yml").read_text()
    assert "torch==2.14.1" in env and "torchvision==0.29.1" in env


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "make test" in (REPO / "README.md").read_text() and "make reproduce" in (REPO / "README.md").read_text()


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def test_readme_and_docs_links_exist():
    """Every relative link and image in README.md and docs/*.md points at a file (and heading) that exists."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    bad = []
    for page in pages:
        text = page.read_text()
        targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'src="([^"]+)"', text)
        for target in targets:
            if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                bad.append(f"{page.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md":
                headings = re.findall(r"^#+\s+(.+)$", dest.read_text(), flags=re.M)
                if anchor not in {_slug(h) for h in headings}:
                    bad.append(f"{page.name}: {target} (no such heading)")
    assert not bad, bad


def test_readme_is_short_and_names_both_tiers():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "**paper**" in readme and "**embedded**" in readme
