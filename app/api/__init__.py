"""HTTP layer: one blueprint per resource; parse, call one service, serialise."""
