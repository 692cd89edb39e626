"""Minimal, stdlib-only stand-ins for the parts of the Azure ML SDK v1 that entry and training scripts
use (shipped by amlc; see amlc's README for what is covered)."""
