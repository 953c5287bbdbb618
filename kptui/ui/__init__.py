"""kptui's terminal explorer (Textual). The engine never imports this package.

One module per pane (``chain_tree``, ``rule_detail``, ``packet_builder``, ``trace_view``), each posting the
typed messages of :mod:`kptui.ui.messages`; :mod:`kptui.ui.main_screen` coordinates them. Everything that
builds the app — the CLI, Pilot tests, snapshots, the benchmark — goes through :func:`kptui.ui.app.make_app`.
"""
