"""Payment providers behind one small interface; `make_gateway` picks one from the settings."""
