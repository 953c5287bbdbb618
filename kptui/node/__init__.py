"""The snapshot layer: the only code that turns a source into a :class:`~kptui.node.snapshot.NodeSnapshot`.

Sources: a file or standard input, recognised by content (an ``iptables-save`` / ``iptables -S`` dump, an
nft listing, text or ``nft -j`` JSON, a ``conntrack -L`` table, a capture bundle, gzip of any of these), the
live node and a network namespace. Every command and the explorer take their rules and node context from a
snapshot. The layer sits between the engine (pure, below it) and the commands and the explorer (above it);
it runs commands only through :mod:`kptui.live.runner` (read-only, a fixed list) and reads files only under
the ceilings of :mod:`kptui.node.limits`.

Modules, bottom up: :mod:`.errors`, :mod:`.limits` (bounded reading), :mod:`.sniff` (what bytes are),
:mod:`.parts` (Artifact, Collection: what a source gave, raw), :mod:`.provenance` (Run: how each part was read),
:mod:`.backends` (which iptables backend's dump is in use), :mod:`.parts_report` (what a snapshot holds, for
reports), :mod:`.snapshot` (NodeSnapshot, the rules in use), :mod:`.bundle` (capture bundles, formats 1 and 2),
:mod:`.collect` (the live node), :mod:`.live` (re-reads for ``top`` and ``--watch``), :mod:`.sources` (files,
standard input, live: the entry points).
"""
