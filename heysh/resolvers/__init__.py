"""How fields are fetched: one module per area, plus request-scoped DataLoaders."""
