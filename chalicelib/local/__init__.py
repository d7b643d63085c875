"""Local mode only: what `chalice local` lacks (it runs no event sources)."""
