"""What ``kptui [FILE]`` opens: a dump, a capture bundle with its node context, or the live node's reader;
and the errors for combinations that make no sense. The bundle is opened in the app through Pilot."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.cli import UserError
from kptui.cli.explorer import app_source, build_app_parser
from kptui.node.bundle import encode_bundle
from kptui.node.live import LiveReader
from kptui.ui.app import make_app

from ..test_bundle import collection
from .conftest import SAMPLES


def source_for(*argv: str) -> object:
    args = build_app_parser().parse_args(list(argv))
    return app_source(args, None)


@pytest.fixture
def bundle_path(tmp_path: Path) -> Path:
    path = tmp_path / "node.kptui"
    path.write_bytes(encode_bundle(collection(), mtime=1748865600))
    return path


def test_a_plain_dump_is_parsed_behind_the_loading_screen() -> None:
    src = source_for(str(SAMPLES / "clusterip.rules"))
    assert src.data is not None and src.ruleset is None and src.reader is None and src.node is None  # type: ignore[attr-defined]


def test_a_bundle_brings_its_node_context_and_says_where_it_comes_from(bundle_path: Path) -> None:
    src = source_for(str(bundle_path))
    assert src.snapshot is not None and src.node is not None  # type: ignore[attr-defined]  # parsed in the app
    assert src.node.addresses[0] == "10.0.0.2" and src.node.pod_cidrs == ("10.244.0.0/16",)  # type: ignore[attr-defined]
    assert src.node.uplink == "eth0"  # type: ignore[attr-defined]
    assert "capture bundle" in src.origin and "node-a" in src.origin  # type: ignore[attr-defined]
    # node options given on the command line win over the bundle's
    args = build_app_parser().parse_args([str(bundle_path), "--node-ip", "192.0.2.9"])
    from kptui.cli import node_from_args

    merged = app_source(args, node_from_args(args)).node
    assert merged is not None and merged.addresses == ("192.0.2.9",) and merged.uplink == "eth0"


def test_no_file_means_the_live_node_read_only() -> None:
    src = source_for()
    assert isinstance(src.reader, LiveReader) and src.watch is None and src.data is None  # type: ignore[attr-defined]
    src = source_for("--watch")
    assert src.watch == 2.0  # type: ignore[attr-defined]
    src = source_for("--netns", "blue", "--watch", "7", "-6")
    assert src.reader.netns == "blue" and src.reader.family == "ipv6" and src.watch == 7.0  # type: ignore[attr-defined]
    assert "network namespace blue" in src.origin  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([str(SAMPLES / "clusterip.rules"), "--watch"], "--watch re-reads the live rules"),
        (["--watch", "0"], "above 0"),
        ([str(SAMPLES / "clusterip.rules"), "--live"], "not both"),
    ],
)
def test_combinations_that_make_no_sense_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        source_for(*argv)


@pytest.mark.asyncio
async def test_the_app_opens_a_bundle_with_the_node_in_the_packet_builder(bundle_path: Path) -> None:
    src = source_for(str(bundle_path))
    app = make_app(snapshot=src.snapshot, node=src.node, origin=src.origin,  # type: ignore[attr-defined]
                   env={"KPTUI_CLIPBOARD": "osc52"})  # fmt: skip
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(300):
            screen = app.main_screen
            if screen is not None and screen.ready and screen.builder.value("node_ips"):
                break
            await pilot.pause(0.02)
        screen = app.main_screen
        assert screen is not None
        assert screen.builder.value("node_ips").split(", ")[0] == "10.0.0.2"
        assert screen.builder.value("pod_cidr") == "10.244.0.0/16"
        assert screen.builder.extra_node is not None and screen.builder.extra_node.uplink == "eth0"
        assert "node-a" in app.sub_title


@pytest.mark.asyncio
async def test_running_out_of_memory_while_parsing_ends_the_app_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind the loading screen too, out of memory is a message (the CLI prints it), never a traceback."""
    from kptui.ui import app as app_module

    def no_memory(decoded: object, **options: object) -> object:
        raise MemoryError

    monkeypatch.setattr(app_module, "parse_decoded", no_memory)
    app = make_app(data=(SAMPLES / "clusterip.rules").read_bytes(), source="big.rules", env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            if app.error_message:
                break
            await pilot.pause(0.02)
    assert app.return_code == 2
    assert app.error_message is not None and app.error_message.startswith(
        "kptui: out of memory (the explorer, reading big.rules): ")


def test_an_nft_listing_opens_as_a_snapshot_parsed_in_the_app(tmp_path: Path) -> None:
    """(It was refused before issue 13: the explorer reads nft listings now, tests/ui/test_nft_panes.py.)"""
    path = tmp_path / "ruleset.txt"
    path.write_text("table ip kube-proxy {\n}\n")
    src = source_for(str(path))
    assert src.snapshot is not None and src.snapshot.nft is not None and src.data is None  # type: ignore[attr-defined]
    path.write_text("tcp 6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 "
                    "sport=2 dport=1 [ASSURED] mark=0 use=1\n")  # fmt: skip
    with pytest.raises(UserError, match="conntrack"):
        source_for(str(path))  # what holds no rules at all is still refused
