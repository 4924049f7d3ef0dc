"""Typed contracts of the data that crosses process boundaries (bus events)."""
