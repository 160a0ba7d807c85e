"""Reproductions of the defects found by adversarial testing (issue 13), one module per group."""
