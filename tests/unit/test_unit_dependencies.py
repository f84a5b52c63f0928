"""Everything the code imports or runs is declared for a fresh machine: Python distributions in pyproject.toml
(per part of the tree: package, `test` extra, `bench` extra), Debian packages in .ci/install-deps."""

from __future__ import annotations

import re
from pathlib import Path

from support.declared_dependencies import RepoFiles, read_repo, undeclared
from support.processes import REPO


def _copy(tmp_path: Path, pyproject: str, install_deps: str, sources: dict[str, str]) -> Path:
    """A repository of just these files: what `read_repo` reads, nothing else."""
    for name, text in {"pyproject.toml": pyproject, ".ci/install-deps": install_deps, **sources}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def _repo() -> RepoFiles:
    return read_repo(REPO)


def test_the_repository_declares_everything_it_uses():
    assert undeclared(_repo()) == []


def test_a_bench_import_missing_from_pyproject_fails(tmp_path):
    repo = _repo()
    pyproject = re.sub(r'^\s*"aiohttp[^"]*",\n', "", repo.pyproject, flags=re.M)
    assert pyproject != repo.pyproject
    root = _copy(tmp_path, pyproject, repo.install_deps, {"bench/viewers.py": "import aiohttp.web\n"})
    assert undeclared(read_repo(root)) == [
        "bench/viewers.py: imports aiohttp from aiohttp, which pyproject.toml does not declare in dependencies or "
        "bench"]


def test_a_bench_only_distribution_does_not_serve_the_tests(tmp_path):
    repo = _repo()
    sources = {"tests/test_x.py": "def test_x():\n    import aiohttp\n", "bench/x.py": "import aiohttp\n"}
    problems = undeclared(read_repo(_copy(tmp_path, repo.pyproject, repo.install_deps, sources)))
    assert problems == ["tests/test_x.py: imports aiohttp from aiohttp, which pyproject.toml does not declare in "
                        "dependencies or test"]


def test_the_repository_own_modules_and_the_stdlib_need_no_declaration(tmp_path):
    repo = _repo()
    sources = {"api/__init__.py": "", "api/app.py": "import json\nfrom api import x\n",
               "tests/support/__init__.py": "", "tests/unit/test_y.py": "import support.processes\nimport api\n",
               "bench/measure.py": "", "bench/tool/__main__.py": "from measure import HOST\nfrom tool import run\n"}
    assert undeclared(read_repo(_copy(tmp_path, repo.pyproject, repo.install_deps, sources))) == []


def test_a_program_needs_its_debian_package_installed(tmp_path):
    repo = _repo()
    install_deps = repo.install_deps.replace(" coturn", "")
    assert install_deps != repo.install_deps
    sources = {"supervisor/relay.py": 'import shutil\nTURN = "turnserver"\nfound = shutil.which(TURN)\n',
               "bench/ns.py": 'import subprocess\nsubprocess.run(["ip", "netns", "list"])\n'}
    problems = undeclared(read_repo(_copy(tmp_path, repo.pyproject, install_deps, sources)))
    assert problems == ["supervisor/relay.py: runs turnserver from the Debian package coturn, which "
                        ".ci/install-deps does not install"]


def test_an_unknown_program_asks_for_its_package(tmp_path):
    repo = _repo()
    sources = {"tests/support/tool.py": 'import shutil\nshutil.which("frobnicate")\nBROWSER = "/usr/bin/lynx"\n'}
    problems = undeclared(read_repo(_copy(tmp_path, repo.pyproject, repo.install_deps, sources)))
    assert len(problems) == 2
    assert all("add it with its Debian package to PROGRAM_PACKAGES" in p for p in problems)
    assert [p.split(":")[1].strip() for p in problems] == ["runs frobnicate", "runs lynx"]


def test_a_module_from_a_debian_package_needs_that_package(tmp_path):
    repo = _repo()
    install_deps = repo.install_deps.replace(" python3-gi", "")
    sources = {"tests/support/camera.py": "import gi\n"}
    problems = undeclared(read_repo(_copy(tmp_path, repo.pyproject, install_deps, sources)))
    assert problems == ["tests/support/camera.py: imports gi from the Debian package python3-gi, which "
                        ".ci/install-deps does not install"]
