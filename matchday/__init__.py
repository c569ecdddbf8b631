"""matchday: load testing and chaos simulation for sports-betting backends on match days."""

__version__ = "0.1.0"
