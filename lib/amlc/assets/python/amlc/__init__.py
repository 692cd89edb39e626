"""amlc helper package, put on PYTHONPATH for the scripts amlc runs (stdlib only)."""
