"""The language server: pygls handlers over a scheduler and one model worker; rendering is pure."""
