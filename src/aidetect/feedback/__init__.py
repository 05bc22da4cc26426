"""Human feedback: the append-only label log (more of the loop lives here, see docs/CONTRACTS.md)."""
