"""Lifeboat: a declarative backup and restore operator for Docker hosts.

Imports point down this stack; packages on one line never import each other:
cli | api → reconciler → apps | repository | catalog → storage → resources → errors.
Nothing is built at import time.
"""
