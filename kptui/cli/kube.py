"""The kube-proxy commands of ``kptui``: ``services``, ``diff``, ``explain`` and ``lint`` (the commands that read
a dump as kube-proxy's Services), registered by :func:`add_kube_commands`.

Their rules come from a snapshot (:func:`kptui.cli.common.load_snapshot`: a dump, listing or capture bundle);
everything else is the pure engine (:mod:`kptui.engine.kube`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from .common import (
    UserError,
    add_input_options,
    add_part_options,
    emit_json,
    load_snapshot,
    print_warnings,
    printable_text,
)

if TYPE_CHECKING:
    from kptui.engine.ipvs import IpvsNode
    from kptui.engine.model import Ruleset

__all__ = ["add_kube_commands"]


def load(args: argparse.Namespace, path: str) -> Ruleset:
    """The rules of ``path`` (a dump, or a capture bundle's rules in use)."""
    return load_snapshot(args, path, live_ok=False).ruleset


def load_with_ipvs(args: argparse.Namespace, path: str) -> tuple[Ruleset, IpvsNode | None]:
    """The rules of ``path`` and an IPVS-mode node's side (its ipsets and IPVS table: a bundle's, or
    ``--ipset``/``--ipvs``), when there is one."""
    snap = load_snapshot(args, path, live_ok=False)
    return snap.ruleset, snap.ipvs_node


def cmd_services(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.engine.kube.build_ipvs import service_index_for
    from kptui.engine.kube.report import matches_filter, service_to_dict, services_text

    ruleset, ipvs = load_with_ipvs(args, args.file)
    services = [s for s in service_index_for(ruleset, ipvs) if args.filter is None or matches_filter(s, args.filter)]
    if args.json:
        emit_json([service_to_dict(s) for s in services], out, compact=len(services) > 1000)
    else:
        print_warnings(ruleset.warnings, err)
        out.write(services_text(services) + "\n")
    return 0


def add_kube_commands(sub: Any) -> None:
    """Register the kube-proxy commands on the ``kptui`` subparsers."""
    p = sub.add_parser(
        "services",
        help="kube-proxy's service ports: addresses, policies, affinity, endpoints with their shares",
        description="List the service ports a kube-proxy dump implements, recovered from the jump graph "
        "(names from comments, checked against the chain hash, or recovered from it).",
    )
    p.add_argument("file", metavar="FILE", help="the dump to read; '-' reads standard input")
    p.add_argument("--filter", metavar="TEXT",
                   help="only service ports whose name, namespace, chain, address (IP or CIDR) or port matches")
    p.add_argument("--json", action="store_true", help="print JSON (stable; see docs/json.md)")
    add_input_options(p)
    add_part_options(p)
    p.set_defaults(handler=cmd_services)
    add_diff_command(sub)  # kptui diff (below)
    add_explain_lint_commands(sub)  # kptui explain, kptui lint (below)


def cmd_diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``kptui diff OLD NEW``: exit 0 without differences, 1 with some (like diff(1)), 2 on bad input."""
    from kptui.engine.kube.diff import diff_services
    from kptui.engine.kube.diff_report import diff_text, diff_to_dict
    from kptui.engine.kube.report import matches_filter

    if args.old == "-" and args.new == "-":
        raise UserError("OLD and NEW cannot both be '-': standard input can be read only once")
    old, new = load(args, args.old), load(args, args.new)
    diff = diff_services(old, new)
    if args.filter is not None:
        text = args.filter
        diff = diff.only(lambda s: matches_filter(s, text))
    if args.json:
        emit_json(diff_to_dict(diff), out, compact=len(diff.added) + len(diff.removed) + len(diff.changed) > 1000)
    else:
        print_warnings(old.warnings, err)
        print_warnings(new.warnings, err)
        out.write(diff_text(diff) + "\n")
    return 0 if diff.empty else 1


def add_diff_command(sub: Any) -> None:
    p = sub.add_parser(
        "diff",
        help="what changed between two dumps, service port by service port (counters: see kptui deltas)",
        description="Compare two kube-proxy dumps (or capture bundles) at service level: service ports added "
        "and removed; per service port, endpoints added and removed, share changes, chain renames and changed "
        "policies (traffic policies, affinity, NodePort, addresses, source ranges); and on the node, layout "
        "changes and rules added or removed in kube-proxy's fixed chains. Rule order and counters are ignored "
        "(counters: see kptui deltas). Exit status 0: no differences, 1: differences, 2: bad input.",
    )
    p.add_argument("old", metavar="OLD", help="the earlier dump or capture bundle; '-' reads standard input")
    p.add_argument("new", metavar="NEW", help="the later dump or capture bundle; '-' reads standard input")
    p.add_argument("--filter", metavar="TEXT", help="only service ports (old or new) whose name, namespace, "
                   "chain, address (IP or CIDR) or port matches, as in kptui services; node-level changes "
                   "are then left out")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON (format kptui.diff/1, stable; see docs/json.md)")
    add_input_options(p)
    p.set_defaults(handler=cmd_diff)


def _chain_arg(text: str) -> tuple[str, int | None]:
    """``CHAIN`` or ``CHAIN:INDEX`` (1-based); UserError for a bad index."""
    chain, sep, tail = text.rpartition(":")
    if not sep:
        return text, None
    if not tail.isdigit() or int(tail) < 1:
        raise UserError(f"'{text}': the rule index after ':' must be a number from 1 (CHAIN:INDEX)")
    return chain, int(tail)


def cmd_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``kptui explain FILE CHAIN[:INDEX]``: what a chain and its rules (or one rule) do."""
    from kptui.engine.kube.build_ipvs import service_index_for
    from kptui.engine.kube.explain import Explainer
    from kptui.engine.kube.findings import analyse_pitfalls
    from kptui.engine.kube.findings_report import explain_text, explain_to_dict, resolve_chain

    chain, index = _chain_arg(args.chain)
    ruleset, ipvs = load_with_ipvs(args, args.file)
    try:
        table = resolve_chain(ruleset, chain, args.table)
        data = explain_to_dict(ruleset, Explainer(ruleset, service_index_for(ruleset, ipvs)),
                               analyse_pitfalls(ruleset, ipvs), table, chain, index)  # fmt: skip
    except LookupError as exc:
        raise UserError(str(exc.args[0] if exc.args else exc)) from None
    if args.json:
        emit_json(data, out, compact=len(data["rules"]) > 1000)
    else:
        print_warnings(ruleset.warnings, err)
        out.write(printable_text(explain_text(data)) + "\n")
    return 0


def cmd_lint(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``kptui lint FILE``: pitfall findings; exit 1 when one is an error."""
    from kptui.engine.kube.findings import find_pitfalls, finding_to_dict
    from kptui.engine.kube.findings_report import lint_text

    ruleset, ipvs = load_with_ipvs(args, args.file)
    findings = find_pitfalls(ruleset, ipvs)
    if args.json:
        emit_json([finding_to_dict(f) for f in findings], out, compact=len(findings) > 1000)
    else:
        print_warnings(ruleset.warnings, err)
        out.write(printable_text(lint_text(findings, ruleset.source)) + "\n")
    return 1 if any(f.severity == "error" for f in findings) else 0


def add_explain_lint_commands(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="what a chain and its rules do, in plain words (kube-proxy's terms for its own rules)",
        description="Explain a chain and every rule in it, or one rule (CHAIN:INDEX, 1-based): kube-proxy's "
        "rules in kube-proxy's terms for the era the dump comes from (which service, which endpoint, what "
        "share), any other rule neutrally from what it matches and does. Findings about the rules are listed "
        "too (see kptui lint).",
    )
    p.add_argument("file", metavar="FILE", help="the dump or capture bundle to read; '-' reads standard input")
    p.add_argument("chain", metavar="CHAIN[:INDEX]", help="a chain name, optionally with a 1-based rule index")
    p.add_argument("--table", "-t", metavar="TABLE", help="the table, when the chain is in several (nat, filter, …)")
    p.add_argument("--json", action="store_true", help="print JSON (format kptui.explain/1, stable; see docs/json.md)")
    add_input_options(p)
    add_part_options(p)
    p.set_defaults(handler=cmd_explain)
    p = sub.add_parser(
        "lint",
        help="pitfalls in a kube-proxy dump: services without endpoints, blackholes, stale chains, …",
        description="List pitfall findings grouped by severity (error, warning, info), each with the rule "
        "that causes it, what it means and what to do. Exit status 1 when there is an error-grade finding, "
        "0 otherwise, 2 on bad input.",
    )
    p.add_argument("file", metavar="FILE", help="the dump or capture bundle to read; '-' reads standard input")
    p.add_argument("--json", action="store_true", help="print a JSON list of findings (stable; see docs/json.md)")
    add_input_options(p)
    add_part_options(p)
    p.set_defaults(handler=cmd_lint)
