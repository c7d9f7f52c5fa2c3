"""NovaWrite: a novel-writing assistant whose AI generations are durable background tasks."""

__version__ = "0.1.0"
