"""The command-line layer: one module per command, each defining its absl flags and `main`.

Only this package defines or reads absl flags; the library below it takes plain arguments.
`common` holds what the commands share (error reporting, shared flag groups).
"""
