"""The comment-based service lookup answers the same from any thread, even while another thread is halfway
through resolving the same chain (the palette, the search index and the filter ask from workers)."""

from __future__ import annotations

import threading

from kptui.engine import parse_ruleset
from kptui.engine.graph import graph_of
from kptui.ui.services import CommentInsights

SVC, SEP = "KUBE-SVC-AAAAAAAAAAAAAAAA", "KUBE-SEP-BBBBBBBBBBBBBBBB"
DUMP = f"""*nat
:PREROUTING ACCEPT [0:0]
:{SVC} - [0:0]
:{SEP} - [0:0]
:KUBE-SVC-LOOPLOOPLOOPLOOP - [0:0]
-A PREROUTING -j {SVC}
-A {SVC} -m comment --comment "shop/web:http -> 10.0.0.1:80" -j {SEP}
-A {SEP} -p tcp -j DNAT --to-destination 10.0.0.1:80
-A KUBE-SVC-LOOPLOOPLOOPLOOP -j KUBE-SVC-LOOPLOOPLOOPLOOP
COMMIT
"""


def test_a_lookup_under_way_in_another_thread_is_not_seen_as_no_service() -> None:
    rs = parse_ruleset(DUMP, source="t.rules")
    assert CommentInsights(rs).service_of("nat", SEP) == "shop/web:http"
    insights = CommentInsights(rs)
    inside, release = threading.Event(), threading.Event()
    real = graph_of(rs).callers_of

    def slow(table: str | None, chain: str) -> object:  # the worker stops halfway through its lookup
        if threading.current_thread().name == "worker":
            inside.set()
            release.wait(5)
        return real(table, chain)

    graph_of(rs).callers_of = slow  # type: ignore[method-assign]
    worker = threading.Thread(target=insights.service_of, args=("nat", SEP), name="worker")
    worker.start()
    assert inside.wait(5)
    try:
        assert insights.service_of("nat", SEP) == "shop/web:http"  # the UI thread, meanwhile
    finally:
        release.set()
        worker.join()
    assert insights.service_of("nat", SEP) == "shop/web:http"
    assert insights.service_of("nat", "KUBE-SVC-LOOPLOOPLOOPLOOP") is None  # a jump loop ends
