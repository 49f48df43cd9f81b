"""Plain rules and values shared by every layer: no I/O here."""
