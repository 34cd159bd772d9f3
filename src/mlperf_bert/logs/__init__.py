"""LoadGen log parsing (detail log, trace, truncation) and the early-stopping rule."""
