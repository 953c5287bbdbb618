"""What the kube-proxy commands read: a source's rules in kube-proxy's mode (iptables: the dump; nftables: the
``kube-proxy`` table of its nft listing), chosen by what kube-proxy says (a bundle's or the live node's
``/proxyMode``) or the rules (:func:`kptui.engine.kube.nft_mode.kube_modes`), or by ``--mode``; and the words for
a node whose other mode left rules behind or is live too."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, TextIO

from kptui.engine.errors import printable

from .common import UserError, load_snapshot, print_warnings

if TYPE_CHECKING:
    from kptui.engine.ipvs import IpvsNode
    from kptui.engine.kube.model import ServiceIndex
    from kptui.engine.kube.nft_mode import KubeModes
    from kptui.engine.model import Ruleset
    from kptui.engine.nft import NftRuleset

__all__ = ["KubeRules", "add_mode_option", "load_kube"]

MODES = ("iptables", "nftables")


def add_mode_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=MODES, help="read kube-proxy's rules of this mode (default: the mode kube-proxy "
                   "reports, else the one whose rules hold services)")  # fmt: skip


@dataclass(frozen=True)
class KubeRules:
    """One source's kube-proxy rules: ``mode`` says which of ``ruleset`` (iptables) and ``nft`` is read."""

    source: str
    mode: str
    ruleset: Ruleset | None
    nft: NftRuleset | None
    modes: KubeModes
    proxy_mode: str | None
    ipvs: IpvsNode | None = None  # an IPVS-mode node's ipsets and IPVS table (a bundle's, --ipset/--ipvs)

    @cached_property
    def index(self) -> ServiceIndex:
        if self.mode == "nftables":
            from kptui.engine.kube.nft_build import nft_service_index_of

            assert self.nft is not None
            return nft_service_index_of(self.nft)
        from kptui.engine.kube.build_ipvs import service_index_for

        assert self.ruleset is not None
        return service_index_for(self.ruleset, self.ipvs)

    def print_warnings(self, err: TextIO) -> None:
        """The listing's or dump's warnings, and what the other mode's rules mean, on standard error."""
        if self.mode == "nftables" and self.nft is not None:
            print_warnings(self.nft.warnings, err)
        elif self.ruleset is not None:
            print_warnings(self.ruleset.warnings, err)
        for lo in self.modes.leftovers:
            if lo.live and self.modes.mixed:
                other = "nftables" if self.mode == "iptables" else "iptables"
                print(printable(f"kptui: warning: {self.source}: kube-proxy's {lo.mode}-mode rules in {lo.where} are "
                                f"live too (both modes DNAT): showing {self.mode} mode; --mode {other} shows the "
                                "other (kptui lint says more)"), file=err)  # fmt: skip
            elif lo.mode != self.mode:
                print(printable(f"kptui: note: {self.source}: {lo.mode}-mode rules left behind in {lo.where} "
                                f"({lo.chains} chains, {lo.rules} rules)"), file=err)  # fmt: skip


def load_kube(args: argparse.Namespace, path: str) -> KubeRules:
    """The kube-proxy rules of ``path`` (a dump, an nft listing, a capture bundle): UserError when the source
    holds none of the mode asked for."""
    from kptui.engine.kube.nft_layout import kube_tables
    from kptui.engine.kube.nft_mode import kube_modes

    snap = load_snapshot(args, path, live_ok=False, need_rules="any")
    ruleset = snap.ruleset if snap.rules is not None else None
    nft = snap.nft_ruleset
    if nft is not None:
        import gc

        gc.freeze()  # lives until the command ends: later allocation bursts need not walk its objects
    modes = kube_modes(ruleset, nft, snap.proxy_mode)
    asked = getattr(args, "mode", None)
    mode = asked or (modes.mode if modes.mode in MODES else None) or ("iptables" if ruleset is not None else "nftables")
    if mode == "nftables" and not kube_tables(nft):
        if asked or ruleset is None:
            what = "an nft listing without" if nft is not None else "no nft listing with"
            raise UserError(f"{snap.source}: holds {what} kube-proxy's nftables table (table ip kube-proxy, table ip6 "
                            "kube-proxy): no kube-proxy rules to read here; kptui summary and kptui trace read "
                            "what it holds")  # fmt: skip
        mode = "iptables"
    if mode == "iptables" and ruleset is None:
        raise UserError(f"{snap.source}: holds no iptables rules (--mode iptables)")
    ipvs = snap.ipvs_node if ruleset is not None else None
    return KubeRules(snap.source, mode, ruleset, nft, modes, snap.proxy_mode, ipvs)
