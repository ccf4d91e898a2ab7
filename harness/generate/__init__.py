"""Generators: programs with an oracle (and, later, hostile programs)."""
