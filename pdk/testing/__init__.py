"""Testing helpers for plugin authors: the pytest plugin's fixtures and `FakeHost`."""

from .fake_host import FakeHost

__all__ = ["FakeHost"]
