"""Format-neutral rule algebra every writer shares, so no format imports another.

``terms``: selector atoms renamed or mapped, the IR's pseudo-labels split out of selector terms;
``flatten``: which denies and tiers a writer may drop or merge exactly; ``deny_wins``: Calico
order, Pass and tiers rewritten as deny-beats-allow rules (rule subtraction).
"""
