"""Example prompts shipped inside the package (for `salience demo`)."""
