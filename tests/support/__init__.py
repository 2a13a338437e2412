"""What the tests need to run real things: a server launcher, synthetic sprites and a tiny model, a load
generator. The benchmarks use the same pieces (they import from here, never the other way round)."""
