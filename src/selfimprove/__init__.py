"""selfimprove: one model generates, verifies, corrects, labels and learns from its own outputs, measured."""

__version__ = "0.1.0"
