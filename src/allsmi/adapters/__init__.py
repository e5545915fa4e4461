"""adapters layer of allsmi (docs/architecture.md §2.3, §3)."""
