"""Messy CSV -> tested tables, nothing lost (roadmap level 0, project 1)."""
