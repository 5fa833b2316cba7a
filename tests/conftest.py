"""Shared pytest setup: quiet TensorFlow, a fresh graph per test."""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
