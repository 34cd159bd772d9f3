"""Everything that talks to the MLPerf LoadGen: its settings (rules presets, user.conf, where each value
came from) and the one function that runs a LoadGen test (``session.run_test``)."""
