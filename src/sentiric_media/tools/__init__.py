"""Command-line tools for people: the demo phone and the recording inspector."""
