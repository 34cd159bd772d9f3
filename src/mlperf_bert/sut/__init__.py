"""The one SUT for every backend, and its batcher."""
