"""Actions of the procedures family (registered on import)."""
