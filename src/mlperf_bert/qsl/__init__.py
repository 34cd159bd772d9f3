"""The LoadGen Query Sample Library over the SQuAD features."""
