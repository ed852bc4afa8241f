"""One module per stage: pure functions with a typed params object, no Prefect."""
