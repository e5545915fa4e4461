"""domain layer of allsmi (see README, Architecture)."""
