"""Rules shared by integrations of one kind (outgoing HTTP...), and the import hooks."""
