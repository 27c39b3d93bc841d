"""SmartHealth: clinical question answering over one patient's record, in Spanish."""

__version__ = "0.1.0"
