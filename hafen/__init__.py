"""hafen: door access, occupancy sensing and the hub for networks of small co-working spaces."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hafen")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
