"""The kube-proxy commands of ``kptui``: ``services``, ``diff``, ``explain`` and ``lint`` (the commands that read
a dump as kube-proxy's Services), registered by :func:`add_kube_commands`.

Their rules come from a snapshot (:func:`kptui.cli.kube_rules.load_kube`: a dump, an nft listing or a capture
bundle, in kube-proxy's iptables or nftables mode); everything else is the pure engine (:mod:`kptui.engine.kube`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from .common import UserError, add_input_options, add_part_options, emit_json, printable_text
from .kube_rules import KubeRules, add_mode_option, load_kube

if TYPE_CHECKING:
    from kptui.engine.kube.diff_model import ServiceDiff

__all__ = ["add_kube_commands"]


def cmd_services(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.engine.kube.report import matches_filter, service_to_dict, services_text

    kube = load_kube(args, args.file)
    services = [s for s in kube.index if args.filter is None or matches_filter(s, args.filter)]
    if args.json:
        emit_json([service_to_dict(s) for s in services], out, compact=len(services) > 1000)
    else:
        kube.print_warnings(err)
        out.write(services_text(services) + "\n")
    return 0


def add_kube_commands(sub: Any) -> None:
    """Register the kube-proxy commands on the ``kptui`` subparsers."""
    p = sub.add_parser(
        "services",
        help="kube-proxy's service ports: addresses, policies, affinity, endpoints with their shares",
        description="List the service ports a kube-proxy dump implements, recovered from the jump graph "
        "(names from comments, checked against the chain hash, or recovered from it); or, in nftables mode, from "
        "kube-proxy's table of an nft listing (its maps, sets and per-service chains).",
    )
    p.add_argument("file", metavar="FILE", help="the dump, nft listing or capture bundle to read; '-' reads standard "
                   "input")  # fmt: skip
    p.add_argument("--filter", metavar="TEXT",
                   help="only service ports whose name, namespace, chain, address (IP or CIDR) or port matches")
    p.add_argument("--json", action="store_true", help="print JSON (stable; see docs/json.md)")
    add_mode_option(p)
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
    old, new = load_kube(args, args.old), load_kube(args, args.new)
    diff = _diff(old, new, diff_services)
    if args.filter is not None:
        text = args.filter
        diff = diff.only(lambda s: matches_filter(s, text))
    if args.json:
        emit_json(diff_to_dict(diff), out, compact=len(diff.added) + len(diff.removed) + len(diff.changed) > 1000)
    else:
        old.print_warnings(err)
        new.print_warnings(err)
        out.write(diff_text(diff) + "\n")
    return 0 if diff.empty else 1


def _diff(old: KubeRules, new: KubeRules, diff_services: Any) -> ServiceDiff:
    """Two iptables dumps: their services and fixed chains; any nftables side: :func:`nft_diff.diff_kube`."""
    if old.mode == new.mode == "iptables":
        result: ServiceDiff = diff_services(old.ruleset, new.ruleset)
        return result
    from kptui.engine.kube.nft_diff import diff_kube

    return diff_kube(old.index, new.index, old_nft=old.nft, new_nft=new.nft, old_source=old.source,
                     new_source=new.source)  # fmt: skip


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
    add_mode_option(p)
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
    kube = load_kube(args, args.file)
    if kube.mode == "nftables":
        return _explain_nft(args, kube, chain, index, out, err)
    ruleset, ipvs = kube.ruleset, kube.ipvs
    assert ruleset is not None
    try:
        table = resolve_chain(ruleset, chain, args.table)
        data = explain_to_dict(ruleset, Explainer(ruleset, service_index_for(ruleset, ipvs)),
                               analyse_pitfalls(ruleset, ipvs), table, chain, index)  # fmt: skip
    except LookupError as exc:
        raise UserError(str(exc.args[0] if exc.args else exc)) from None
    if args.json:
        emit_json(data, out, compact=len(data["rules"]) > 1000)
    else:
        kube.print_warnings(err)
        out.write(printable_text(explain_text(data)) + "\n")
    return 0


def _explain_nft(args: argparse.Namespace, kube: KubeRules, name: str, index: int | None, out: TextIO,
                 err: TextIO) -> int:  # fmt: skip
    from kptui.engine.kube.nft_explain import NftExplainer
    from kptui.engine.kube.nft_findings import nft_pitfalls
    from kptui.engine.kube.nft_report import nft_explain_text, nft_explain_to_dict, resolve_nft

    nft = kube.nft
    assert nft is not None
    try:
        family, table, bare, is_set = resolve_nft(nft, name, args.table)
        data = nft_explain_to_dict(nft, NftExplainer(nft), nft_pitfalls(nft, kube.ruleset, kube.proxy_mode), family,
                                   table, bare, index, is_set=is_set)  # fmt: skip
    except LookupError as exc:
        raise UserError(str(exc.args[0] if exc.args else exc)) from None
    if args.json:
        emit_json(data, out, compact=len(data["rules"]) + len(data.get("elements", ())) > 1000)
    else:
        kube.print_warnings(err)
        out.write(printable_text(nft_explain_text(data)) + "\n")
    return 0


def cmd_lint(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``kptui lint FILE``: pitfall findings; exit 1 when one is an error."""
    from kptui.engine.kube.findings import find_pitfalls, finding_to_dict
    from kptui.engine.kube.findings_report import lint_text

    kube = load_kube(args, args.file)
    findings = _lint(kube, find_pitfalls)
    if args.json:
        emit_json([finding_to_dict(f) for f in findings], out, compact=len(findings) > 1000)
    else:
        kube.print_warnings(err)
        source = kube.nft.source if kube.mode == "nftables" and kube.nft is not None else \
            kube.ruleset.source if kube.ruleset is not None else kube.source  # fmt: skip
        out.write(printable_text(lint_text(findings, source)) + "\n")
    return 1 if any(f.severity == "error" for f in findings) else 0


def _lint(kube: KubeRules, find_pitfalls: Any) -> tuple[Any, ...]:
    """The findings of the mode in use, with what the other mode's rules mean (leftovers, both live)."""
    if kube.mode == "nftables":
        from kptui.engine.kube.nft_findings import nft_pitfalls

        assert kube.nft is not None
        return nft_pitfalls(kube.nft, kube.ruleset, kube.proxy_mode).findings
    from kptui.engine.kube.findings import Pitfalls
    from kptui.engine.kube.findings_checks import run_checks
    from kptui.engine.kube.nft_findings_node import mode_findings

    assert kube.ruleset is not None
    if not kube.modes.leftovers:
        found: tuple[Any, ...] = find_pitfalls(kube.ruleset, kube.ipvs)
        return found
    return Pitfalls([*run_checks(kube.ruleset, kube.ipvs), *mode_findings(kube.modes)]).findings


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
    p.add_argument("chain", metavar="CHAIN[:INDEX]", help="a chain name, optionally with a 1-based rule index; in an nft "
                   "listing also @SET[:INDEX] (a set or map, and one element)")  # fmt: skip
    p.add_argument("--table", "-t", metavar="TABLE", help="the table, when the chain is in several (nat, filter, …; "
                   "nft: 'ip kube-proxy', 'inet firewalld')")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON (format kptui.explain/1, stable; see docs/json.md)")
    add_mode_option(p)
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
    add_mode_option(p)
    add_input_options(p)
    add_part_options(p)
    p.set_defaults(handler=cmd_lint)
