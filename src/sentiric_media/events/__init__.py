"""Events of calls: the in-process bus (and, later, the broker publisher)."""
