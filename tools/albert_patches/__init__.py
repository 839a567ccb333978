"""The patch tool: fetch upstream, convert it with tf_upgrade_v2, add the overlay, apply the series.

One module per stage (fetch, convert, overlay, patching), plus the tree they build (tree),
the project's inputs (lock, series), and the commands over them (apply, check, regenerate,
update, status).
"""
