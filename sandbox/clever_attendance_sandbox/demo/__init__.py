"""`make demo`: the pipeline against the sandbox, end to end."""
