"""The iptables side of kptui's engine as units in a registry: one unit per match module and per target.

- :mod:`.values`: value types (what iptables-restore accepts for an argument, read the way it reads it), all
  by one import; what a value type is in :mod:`.vtype`, addresses in :mod:`.values_addr`, protocols and ports
  in :mod:`.values_port`;
- :mod:`.unitbase`: what a unit is (:class:`~.unitbase.MatchUnit`, :class:`~.unitbase.TargetUnit`, their
  option sets :class:`~.unitbase.Opt`);
- :mod:`.matches` / :mod:`.targets`: the units, one file per family;
- :mod:`.registry`: the units by name (adding one: its entry in its family's file, one line there);
- :mod:`.decode`: a rule's tokens to a :class:`~kptui.engine.model.RuleSpec`, with the units' option sets.

:func:`kptui.engine.rules.decode_rule`, :func:`kptui.engine.matches.compile_match` and
:func:`kptui.engine.targets.apply_target` are the thin dispatchers the rest of kptui calls.
"""
