"""The exercises' stubs: the files `minfer exercises start ID` copies for the student."""
