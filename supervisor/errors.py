"""Startup failures and their exit codes (the C++ icey-server's: 2 usage, 3 config, 4 preflight)."""

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_PREFLIGHT = 4


class StartupError(Exception):
    """A failure before the service runs; `message` is printed as is, then the process exits."""

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str, *, show_usage: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.show_usage = show_usage


class UsageError(StartupError):
    exit_code = EXIT_USAGE


class ConfigError(StartupError):
    exit_code = EXIT_CONFIG


class PreflightError(StartupError):
    exit_code = EXIT_PREFLIGHT
