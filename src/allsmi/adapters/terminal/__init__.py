"""The terminal: the asciimatics painter."""
