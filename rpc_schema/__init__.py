"""JSON Schema of every JSON-RPC method (one file each) and their shared definitions."""
