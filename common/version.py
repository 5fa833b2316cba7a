"""The project's version: setup.py installs it and every export manifest records it."""
VERSION = '0.1.0'
