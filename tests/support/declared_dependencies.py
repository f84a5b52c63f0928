"""Check that what the code uses is declared where a fresh machine gets it from: every Python module it imports
in pyproject.toml (the package's dependencies, the `test` extra for tests/, the `bench` extra for bench/), and
every program it looks up or runs in the apt-get line of .ci/install-deps.

It reads the files as text (the AST of each *.py), so a dependency that only a skipped test or an unrun
benchmark needs is caught too.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PACKAGES = ("protocol", "supervisor", "workers", "api")
SCANNED = (*PACKAGES, "tests", "bench")
INSTALL_DEPS = ".ci/install-deps"
# What each part of the tree may rely on: the groups of pyproject.toml a fresh install brings along with it.
GROUPS = {"tests": ("dependencies", "test"), "bench": ("dependencies", "bench")}
PACKAGE_GROUPS = ("dependencies",)

# Program -> the Debian package in .ci/install-deps that puts it on the machine.
PROGRAM_PACKAGES = {
    "turnserver": "coturn",
    "gst-launch-1.0": "gstreamer1.0-tools",
    "ffmpeg": "ffmpeg",
    "ffprobe": "ffmpeg",
    "systemd-analyze": "systemd",
    "janus": "janus",
    "chromium": "chromium",
    "ip": "iproute2",
    "mount": "mount",  # a small tmpfs: a disk that fills up
    "umount": "mount",
    "chattr": "e2fsprogs",  # root ignores a read-only mode: an immutable directory stands in for one
    "python3": "python3-gi",  # the system Python runs the GStreamer camera; python3-gi is what it needs there
}
# Modules that come from Debian packages, not from PyPI (imported by scripts the system Python runs).
MODULE_PACKAGES = {"gi": "python3-gi"}
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}
PROGRAM_DIRS = ("/usr/bin/", "/usr/sbin/")


@dataclass(frozen=True)
class RepoFiles:
    """The texts the check reads: pyproject.toml, .ci/install-deps, and every *.py under SCANNED by path."""

    pyproject: str
    install_deps: str
    sources: Mapping[str, str]


def read_repo(root: Path) -> RepoFiles:
    sources = {p.relative_to(root).as_posix(): p.read_text()
               for folder in SCANNED for p in sorted((root / folder).rglob("*.py"))}
    return RepoFiles((root / "pyproject.toml").read_text(), (root / INSTALL_DEPS).read_text(), sources)


def undeclared(files: RepoFiles) -> list[str]:
    """One message per thing used but not declared; empty when everything is."""
    project = tomllib.loads(files.pyproject)["project"]
    declared = {"dependencies": _names(project.get("dependencies", []))}
    declared |= {group: _names(reqs) for group, reqs in project.get("optional-dependencies", {}).items()}
    own_programs = set(project.get("scripts", {}))
    apt = _apt_packages(files.install_deps)
    distributions = importlib.metadata.packages_distributions()
    paths = [PurePosixPath(p) for p in files.sources]
    problems = []
    for name, text in files.sources.items():
        path = PurePosixPath(name)
        tree = ast.parse(text, name)
        groups = GROUPS.get(path.parts[0], PACKAGE_GROUPS)
        allowed = set().union(*(declared.get(g, set()) for g in groups))
        local = _local_modules(paths, path.parent)
        for module in sorted(_imported(tree) - local - set(sys.stdlib_module_names)):
            if module in MODULE_PACKAGES:
                if MODULE_PACKAGES[module] not in apt:
                    problems.append(f"{name}: imports {module} from the Debian package {MODULE_PACKAGES[module]}, "
                                    f"which {INSTALL_DEPS} does not install")
                continue
            dists = distributions.get(module)
            if not dists:
                problems.append(f"{name}: imports {module}, which no installed distribution provides: add its "
                                f"distribution to pyproject.toml ({' or '.join(groups)})")
            elif not {_canonical(d) for d in dists} & allowed:
                problems.append(f"{name}: imports {module} from {'/'.join(dists)}, which pyproject.toml does not "
                                f"declare in {' or '.join(groups)}")
        for program in sorted(_programs(tree) - own_programs):
            package = PROGRAM_PACKAGES.get(program)
            if package is None:
                problems.append(f"{name}: runs {program}: add it with its Debian package to PROGRAM_PACKAGES in "
                                "tests/support/declared_dependencies.py (and the package to .ci/install-deps)")
            elif package not in apt:
                problems.append(f"{name}: runs {program} from the Debian package {package}, which {INSTALL_DEPS} "
                                "does not install")
    return problems


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    return {_canonical(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r.strip()).group()) for r in requirements}


def _apt_packages(script: str) -> set[str]:
    """The package names on the `apt-get install` lines (continuations joined; options, redirections skipped)."""
    packages = set()
    for line in script.replace("\\\n", " ").splitlines():
        words = line.split()
        if "apt-get" in words and "install" in words:
            packages |= {w for w in words[words.index("install") + 1:] if re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", w)}
    return packages


def _local_modules(paths: list[PurePosixPath], here: PurePosixPath) -> set[str]:
    """Top-level names importable from the repository itself: the packages at the root, what lies in tests/
    (conftest.py puts it on sys.path) and bench/ (a script's own directory), and the importing file's own
    directory (pytest's rootdir-relative imports)."""
    local = set()
    for folder in (PurePosixPath("."), PurePosixPath("tests"), PurePosixPath("bench"), here):
        for p in paths:
            if p.parent == folder:
                local.add(p.stem)
            elif p.is_relative_to(folder) and len(p.parts) > len(folder.parts) + 1:
                local.add(p.parts[len(folder.parts)])
    return local


def _imported(tree: ast.AST) -> set[str]:
    """Top-level names of every absolute import, function-level (lazy) ones included."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _programs(tree: ast.Module) -> set[str]:
    """Programs named in `shutil.which(...)`, as the first word of a `subprocess.*([...])` command, or as a module
    constant holding a path under /usr/bin or /usr/sbin; a name argument counts when it is a string constant."""
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}
    found = {PurePosixPath(v).name for v in constants.values() if v.startswith(PROGRAM_DIRS)}
    for call in _calls(tree):
        if _is_call(call, "shutil", {"which"}) and call.args:
            word = _string(call.args[0], constants)
        elif _is_call(call, "subprocess", SUBPROCESS_CALLS) and call.args and isinstance(call.args[0], ast.List) \
                and call.args[0].elts:
            word = _string(call.args[0].elts[0], constants)
        else:
            continue
        if word is not None:
            found.add(PurePosixPath(word).name)
    return found


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def _is_call(call: ast.Call, module: str, functions: set[str]) -> bool:
    f = call.func
    return isinstance(f, ast.Attribute) and f.attr in functions and isinstance(f.value, ast.Name) \
        and f.value.id == module


def _string(node: ast.expr, constants: Mapping[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None
