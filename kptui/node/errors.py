"""Why a source gives no snapshot: every message is meant for the user (the command layer prints it and exits
with status 2), and names the source it is about."""

from __future__ import annotations

__all__ = ["BundleError", "InputTooLarge", "LiveError", "NftOnly", "NodeDataError", "SourceError"]


class NodeDataError(ValueError):
    """The node's data cannot give a snapshot (no rules could be read, …); the message says why."""


class BundleError(NodeDataError):
    """Not a readable bundle: corrupted, truncated, or from a newer kptui; the message says which."""


class LiveError(NodeDataError):
    """Reading the live node failed; the message says why and what to run instead."""


class SourceError(NodeDataError):
    """A file or standard input that cannot be read (missing, a directory, a terminal, damaged gzip)."""


class InputTooLarge(SourceError):
    """More data than the reading ceiling allows (``--max-input``): a gzip or tar bomb, or a huge file."""


class NftOnly(NodeDataError):
    """The source holds an nft listing and no iptables rules, and this kptui reads only iptables rules."""
