"""Platform self-check: bus -> warehouse -> lake round trip."""
