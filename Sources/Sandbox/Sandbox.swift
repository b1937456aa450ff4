// The Sandbox module: written by its own issue.
