"""Claims adjudication service."""
