"""Product identity, shared by the CLI banner, `--version` and every JSON document."""

from importlib.metadata import PackageNotFoundError, version

PRODUCT = "icey"
SERVICE = "icey-server"

try:
    VERSION = version("icey-server")
except PackageNotFoundError:  # running from a source tree without an install
    VERSION = "0.0.0+src"
