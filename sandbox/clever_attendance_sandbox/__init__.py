"""Local stand-ins for Clever's API and Safety Shield's dataFileUpload API, the local Airflows, the demo and the
test kit: the distribution clever-attendance-sandbox, never deployed; the provider clever_attendance never imports
it."""
