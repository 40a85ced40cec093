"""Incident data sources: the sample generator (and, later, labelled-data loaders)."""
