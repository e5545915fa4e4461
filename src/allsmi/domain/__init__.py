"""domain layer of allsmi (docs/architecture.md §2.2, §4)."""
