"""The core: the catalogue (tools.yaml, read as tools.json), the argument models, the contract
extract, the error contract, what one call sends (request.py) and how an answer becomes a result.
It imports nothing else of relatel_mcp; every other layer builds on it."""
