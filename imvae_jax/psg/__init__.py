"""psg package."""
