"""iptables match units, one file per family (see :mod:`kptui.engine.xt.registry`)."""
