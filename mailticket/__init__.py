"""mailticket: an email-driven IT incident desk."""

__version__ = "0.1.0"
