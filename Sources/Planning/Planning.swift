// The Planning module: written by its own issue.
