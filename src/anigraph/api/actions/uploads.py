"""Actions of the uploads family (registered on import)."""
