"""Feature store: per-card and per-merchant aggregates declared once, computed online and offline."""
