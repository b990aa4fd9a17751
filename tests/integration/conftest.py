"""Tests against real node processes and the real model.

Node processes are started once per test module (the machine is small) and always stopped;
the model, its client side and the `generate` baseline are session fixtures of
tests/conftest.py, computed once per test session.
"""
