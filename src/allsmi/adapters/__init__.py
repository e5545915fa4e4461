"""adapters layer of allsmi (see README, Architecture)."""
