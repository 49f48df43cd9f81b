"""Actions of the events family (registered on import)."""
