"""The cost model behind docs/COST.md: prices, inputs, request counts, rows and tables."""
