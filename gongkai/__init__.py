"""gongkai: government information-disclosure annual reports as a research warehouse."""

__version__ = "0.1.0"
