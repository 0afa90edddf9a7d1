"""orchestra-hello: an example operator automation for Orchestra (see plugin.py)."""
