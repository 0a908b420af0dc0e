"""Local stand-ins for Clever's API and Safety Shield's dataFileUpload API."""
