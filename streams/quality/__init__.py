"""Data quality I/O: the in-stream windows (Faust topic, table, agent, timer), their
warehouse snapshots, and the on-demand analysis. The rules live in
:mod:`streams.domain.quality` (built from the settings by ``Settings.quality_rules``); this
package only moves counts and reports around.
"""
