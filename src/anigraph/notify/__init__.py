"""Event notification: the outbox, push callbacks and the pull queue (spec 5)."""
