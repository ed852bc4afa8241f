"""The QA report page."""
