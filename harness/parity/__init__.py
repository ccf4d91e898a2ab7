"""Parity: observations, normalisers, comparison, A/A calibration."""
