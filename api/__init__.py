"""The API process: Quart on Hypercorn, serving the state the workers and supervisor push."""
