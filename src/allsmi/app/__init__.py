"""app layer of allsmi (see README, Architecture)."""
