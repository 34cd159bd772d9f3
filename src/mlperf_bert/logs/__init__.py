"""LoadGen settings (rules presets, user.conf) and LoadGen log parsing."""
