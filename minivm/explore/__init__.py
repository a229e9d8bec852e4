"""Exploring interleavings: run a program under many schedules and collect every outcome."""
