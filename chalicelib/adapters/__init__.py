"""One module per backend of each port; bootstrap.py chooses among them."""
