"""Everything that turns an incident into index entries and finds it again (no torch here)."""
