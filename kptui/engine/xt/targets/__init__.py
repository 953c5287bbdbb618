"""iptables target units, one file per family (see :mod:`kptui.engine.xt.registry`)."""
