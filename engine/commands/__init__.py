"""Sub-commands of the `oneprot` CLI, one module each."""
