"""harness/stack"""
