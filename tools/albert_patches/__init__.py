"""The patch tool: fetch upstream, convert it with tf_upgrade_v2, add the overlay, apply the series,
and write a tree's commits back as patches.

  cli             the command line: builds the parser from commands/ and dispatches
  commands/       one module per command (apply, check, regenerate, update, status), each
                  with its options (options.py holds the shared ones), help and run()
  The stages, in the order a build runs them:
  fetch           1. upstream's objects into the cache's mirror, then a checkout of the pin
  convert         2. tf_upgrade_v2 over the checkout (tf_upgrade.py runs it in parallel)
  overlay         3. overlay/ copied in, as one commit
  patching        4. each patch applied with exact context, as one commit
  export          back: the tree's commits written to patches/ and overlay/ (regenerate, update)
  build           stages 1-4 into a new directory, a line per stage
  What they work on:
  project         the project's inputs: patches/series (topic folders), overlay/, PatchFile
  diff            the one reader of a patch's diff: files, hunks, changed lines
  lint            the rules every patch file obeys
  upstream_lock   upstream.lock: the pinned commit and how to verify it
  record          what the tool records in a tree it built
  update_state    an unfinished `update`, kept in the tree between --continue's
  work            work in a tree that is in no patch
  staging         building beside a tree and swapping it in
  file_locks      flock locks on the cache and a tree's folder, so concurrent runs take turns
  git             the one way the tool drives git (GitPython, pinned settings)
  errors, progress  the one-line error, and the progress lines
"""
