"""The patch tool: fetch upstream, convert it with tf_upgrade_v2, add the overlay, apply the series.

One module per stage (fetch, convert, overlay, patching), plus the tree they build (tree), how
a new tree is built beside it and swapped in (staging), the locks that let runs take turns
(locks), the project's inputs (lock, series), and the commands over them (apply, check,
regenerate, update, status).
"""
