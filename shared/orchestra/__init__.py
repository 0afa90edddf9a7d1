"""Orchestra Automation: an event-driven automation controller for Google Cloud."""

__version__ = "0.1.0"
