"""Procedural worlds with ground truth and offline photo sets."""
