"""What the workflows share, as small objects a workflow holds (composition, not a base class):

- `calls`: activities called with the standard retry policy; cloud operations started and waited
  for; health gates; request tokens.
- `inputs`: reading a plain-JSON input without getting stuck on one that does not fit; the start
  checks (the operation id is the cluster's lock); search attributes.
- `trail`: the audit trail, the operation's steps and the callback notes that follow them.
- `fleet_clock`: the fleet's calendar clock that windows, freezes and escalations are timed on,
  and the nap until a time on it (the window wait ClusterUpgrade and PatchWave both use).
- `controls`: the refusals every control's validator shares.
- `failures`: the one way an operation that stops reports why.
- `drain_escalation`: the ladder a drain blocked by PodDisruptionBudgets climbs.
- `disaster_recovery`: the steps DRFailover and DRFailback share.
"""
