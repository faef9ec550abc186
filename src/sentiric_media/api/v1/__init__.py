"""Generated stubs of sentiric.media.v1 (regenerate with `make proto`)."""
