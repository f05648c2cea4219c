"""Running environments: containers, readiness, listing, verification."""
