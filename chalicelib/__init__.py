"""ImageLabeller: everything but the Chalice entry points (see app.py)."""
