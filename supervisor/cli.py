"""`icey-server`: flags and config, `--doctor`, the preflight gate, the banner, then the service."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from protocol.logs import escape_controls, setup_logging
from protocol.scrub import public_value, register_secrets, register_source_url, url_secrets
from protocol.version import SERVICE, VERSION
from supervisor import preflight
from supervisor.config_loader import load_settings
from supervisor.errors import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, StartupError
from supervisor.flags import USAGE, Flags, parse_flags

WARN_FLAG_PASSWORD = ("Warning: a --source flag carries a password, which every local user can read in the process "
                      "list; pass such sources in the config file or ICEY_SOURCES instead.")


def _banner(settings, scheme: str) -> str:
    lines = [f"icey-server listening on {settings.http.host}:{settings.http.port}",
             f"Web UI: {scheme}://localhost:{settings.http.port}/",
             f"Config: {settings.config_path} ({'loaded' if settings.config_exists else 'defaults'})"]
    if settings.metrics.port:
        lines.insert(2, f"Metrics: {scheme}://{settings.metrics.bind_host(settings.http)}:{settings.metrics.port}/metrics")
    for src in settings.sources:
        shown = escape_controls(public_value(src.url)) if src.url else "(none)"
        lines.append(f"Source {src.id}: {shown} ({src.mode}, {src.kind})")
    return "\n".join(lines)


def _flag_carries_password(flags: Flags) -> bool:
    return any(url_secrets(url) for _, url in flags.sources)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        flags = parse_flags(argv)
        if flags.help:
            sys.stdout.write(USAGE)
            return EXIT_OK
        if flags.version:
            print(f"{SERVICE} {VERSION}")
            return EXIT_OK
        if _flag_carries_password(flags):
            print(WARN_FLAG_PASSWORD, file=sys.stderr)
        settings = load_settings(flags, os.environ)
        register_secrets(settings.auth.token, settings.turn.secret, settings.metrics.token)
        for src in settings.sources:
            register_source_url(src.url)
        log = setup_logging("supervisor", settings.log_level)
        if flags.doctor:
            report, ready = preflight.doctor_report(settings)
            print(json.dumps(report, indent=2))
            return EXIT_OK if ready else EXIT_RUNTIME
        if settings.config_error is not None:
            print(f"Error: invalid config file '{settings.config_path}': {settings.config_error}", file=sys.stderr)
            return EXIT_CONFIG
        if flags.check_config:
            for warning in settings.warnings:
                print(f"Warning: {warning}", file=sys.stderr)
            print(f"Config OK: {settings.config_path if settings.config_exists else 'defaults'}; "
                  f"{len(settings.sources)} source(s)")
            return EXIT_OK
        for warning in settings.warnings:
            print(f"Warning: {escape_controls(warning)}", file=sys.stderr)
        checks = preflight.gate(settings)
        preflight.check_runtime_dir()
        degrading = preflight.degrading_warnings(settings)
        http_socket = preflight.bind_http(settings)
        metrics_socket = preflight.bind_metrics(settings)
        preflight.probe_turn_ports(settings)
    except StartupError as exc:
        print(exc.message, file=sys.stderr)
        if exc.show_usage:
            sys.stderr.write(USAGE)
        return exc.exit_code
    for warning in degrading:
        print(f"Warning: {warning}", file=sys.stderr)
    if not settings.auth.token:
        print("Warning: no auth token is set (auth.token / ICEY_AUTH_TOKEN): anyone who can reach the port can watch "
              "and read the API; only clients on this host can publish, end sessions or change anything.",
              file=sys.stderr)
    print(_banner(settings, "https" if settings.tls.cert else "http"), flush=True)

    from supervisor.config_generations import ConfigReader
    from supervisor.service import Service

    log.info("starting %d source(s)", len(settings.sources))
    return asyncio.run(Service(settings, checks, degrading, http_socket, metrics_socket,
                               ConfigReader(flags, dict(os.environ))).run())


if __name__ == "__main__":
    raise SystemExit(main())
