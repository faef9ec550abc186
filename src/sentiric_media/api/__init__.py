"""The gRPC edge: servicer, status mapping, server, generated stubs."""
