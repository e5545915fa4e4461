"""app layer of allsmi (docs/architecture.md §2.4, §7)."""
